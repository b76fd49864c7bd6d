//! Parser tests on the real fixtures of `shared/fixtures/ent/` and on small inline files.

mod aaf;
mod csv;
mod siecle;
mod xml;

use std::fs::File;
use std::io::BufReader;

use super::{ParseItem, ParseWarning, Record};

/// Opens a fixture by its real path (read-only, shared with the other engineers).
fn fixture(name: &str) -> BufReader<File> {
    let path = format!("{}/../../shared/fixtures/ent/{name}", env!("CARGO_MANIFEST_DIR"));
    BufReader::new(File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// Runs a parser over everything, panicking on a parse error.
fn run<I: IntoIterator<Item = Result<ParseItem, super::ParseError>>>(items: I) -> (Vec<Record>, Vec<ParseWarning>) {
    super::collect(items).unwrap()
}

fn pupils(records: &[Record]) -> Vec<&super::Pupil> {
    records.iter().filter_map(|r| if let Record::Pupil(p) = r { Some(p) } else { None }).collect()
}

fn guardians(records: &[Record]) -> Vec<&super::Guardian> {
    records.iter().filter_map(|r| if let Record::Guardian(g) = r { Some(g) } else { None }).collect()
}

fn structures(records: &[Record]) -> Vec<&super::Structure> {
    records.iter().filter_map(|r| if let Record::Structure(s) = r { Some(s) } else { None }).collect()
}

fn links(records: &[Record]) -> Vec<&super::Link> {
    records.iter().filter_map(|r| if let Record::Link(l) = r { Some(l) } else { None }).collect()
}

fn codes(warnings: &[ParseWarning]) -> Vec<&'static str> {
    warnings.iter().map(|w| w.code).collect()
}
