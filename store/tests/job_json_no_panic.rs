//! No input makes the job JSON decoder, canonicalize or validate panic: arbitrary bytes,
//! and valid job files with random bytes changed, cut or repeated.
#![cfg(not(madsim))]

use proptest::prelude::*;
use stead_store::model::job_from_api_json;

const FULL_JOB: &str = include_str!("../../model/src/testdata/full_job.json");

fn decode_all_the_way(input: &str) {
    if let Ok(mut job) = job_from_api_json(input) {
        job.canonicalize();
        let _ = job.validate();
        let _ = stead_store::model::job_to_api_json(&job);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Cut(usize, usize),
    Repeat(usize, usize),
}

fn mutated(mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = FULL_JOB.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Replace(at, b) => {
                let at = at % len;
                if at < bytes.len() {
                    bytes[at] = b;
                }
            }
            Mutation::Cut(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            Mutation::Repeat(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                let piece = bytes[at.min(end)..end].to_vec();
                bytes.splice(end..end, piece);
            }
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            any::<usize>(),
            prop_oneof![Just(b'{'), Just(b'}'), Just(b'"'), Just(b'1'), Just(b'-'), Just(b'n'), any::<u8>()]
        )
            .prop_map(|(a, b)| Mutation::Replace(a, b)),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Cut(a, n)),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Repeat(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all_the_way(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_job_files_never_panic(mutations in proptest::collection::vec(mutation(), 1..6)) {
        decode_all_the_way(&String::from_utf8_lossy(&mutated(&mutations)));
    }
}

#[test]
fn the_unmutated_job_file_decodes() {
    job_from_api_json(FULL_JOB).expect("the fixture is a valid job");
}
