//! Files through the fake host: whole reads, pieces, seeking, begun reads
//! with the retention rule, and every refusal.

use std::io::{Read, Seek, SeekFrom};

use super::{File, read, read_begin, read_to_string, size};
use crate::testing::TestRequest;
use crate::{ErrorKind, join_all};

fn contents(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn read_returns_the_whole_file_and_size_its_length() {
    let big = contents(200_000);
    let expected = big.clone();
    let response = TestRequest::get("/")
        .file("data/big.bin", big)
        .file("data/hello.txt", "hello\n")
        .file("data/empty", "")
        .check(|| {
            assert_eq!(size("data/big.bin").unwrap(), 200_000);
            assert_eq!(read("data/big.bin").unwrap(), expected);
            assert_eq!(read_to_string("data/hello.txt").unwrap(), "hello\n");
            assert_eq!(read("data/empty").unwrap(), b"");
        });
    assert_eq!(response.open_handles(), 0);
}

#[test]
fn read_to_string_rejects_bytes_that_are_not_utf8() {
    TestRequest::get("/").file("data/bin", [0xff]).check(|| {
        let error = read_to_string("data/bin").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r#"file "data/bin" is not UTF-8"#),
            "{error}"
        );
    });
}

#[test]
fn a_file_reads_in_pieces_and_seeks() {
    let data = contents(10_000);
    let expected = data.clone();
    TestRequest::get("/").file("data/f", data).check(|| {
        let mut file = File::open("data/f").unwrap();
        assert_eq!(file.size(), 10_000);
        assert_eq!(file.path(), "data/f");
        let mut piece = [0; 100];
        file.read_exact(&mut piece).unwrap();
        assert_eq!(piece[..], expected[..100]);
        assert_eq!(file.seek(SeekFrom::Current(50)).unwrap(), 150);
        file.read_exact(&mut piece).unwrap();
        assert_eq!(piece[..], expected[150..250]);
        assert_eq!(file.seek(SeekFrom::End(-10)).unwrap(), 9_990);
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, expected[9_990..]);
        assert_eq!(file.read(&mut piece).unwrap(), 0);
        assert_eq!(file.seek(SeekFrom::Start(20_000)).unwrap(), 20_000);
        assert_eq!(file.read(&mut piece).unwrap(), 0);
        let error = file.seek(SeekFrom::Current(-30_000)).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    });
}

#[test]
fn begun_reads_return_their_ranges_even_past_the_first_buffer() {
    let data = contents(300_000);
    let expected = data.clone();
    let response = TestRequest::get("/").file("data/f", data).check(|| {
        let ranges = [(0, 10), (299_995, 100), (400_000, 10), (1_000, 200_000)];
        let reads = join_all(ranges.map(|(offset, len)| read_begin("data/f", offset, len)));
        let reads: Vec<Vec<u8>> = reads.into_iter().map(Result::unwrap).collect();
        assert_eq!(reads[0], expected[..10]);
        assert_eq!(reads[1], expected[299_995..]);
        assert!(reads[2].is_empty());
        assert_eq!(reads[3], expected[1_000..201_000]);
    });
    assert_eq!(response.open_handles(), 0);
}

#[test]
fn refusals_have_their_kinds_and_the_hosts_messages() {
    TestRequest::get("/")
        .file("data/a.txt", "a")
        .file("data/handler.wasm", "\0asm")
        .mount("empty")
        .check(|| {
            let cases = [
                ("data/missing.txt", ErrorKind::NotFound, "not found"),
                ("empty/a.txt", ErrorKind::NotFound, "not found"),
                ("secret/a.txt", ErrorKind::Denied, "outside every mount"),
                ("data/handler.wasm", ErrorKind::Denied, "never readable"),
                ("data/../a.txt", ErrorKind::Invalid, "climbs out"),
                ("/data/a.txt", ErrorKind::Invalid, "absolute"),
            ];
            for (path, kind, text) in cases {
                for error in [
                    read(path).unwrap_err(),
                    File::open(path).unwrap_err(),
                    read_begin(path, 0, 10).wait().unwrap_err(),
                ] {
                    assert_eq!(error.kind(), Some(kind), "{path}: {error}");
                    assert!(error.to_string().contains(text), "{path}: {error}");
                    assert!(error.to_string().contains(path), "{path}: {error}");
                    assert_eq!(error.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
                }
            }
        });
}

#[test]
fn a_file_deleted_after_open_fails_its_read_as_not_found() {
    TestRequest::get("/").file("data/a", "abc").check(|| {
        let mut file = File::open("data/a").unwrap();
        crate::sys::fake::remove_file("data/a");
        let error = file.read(&mut [0; 4]).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        // The host's failure is still there for `Error::kind`.
        let error = crate::Error::from(error);
        assert_eq!(error.kind(), Some(ErrorKind::NotFound));
    });
}
