use std::io::{BufReader, Read};

use super::*;
use crate::school::parse::{ParseError, parse_aaf, parse_school_xml, parse_siecle};

fn err_of<I: IntoIterator<Item = Result<ParseItem, ParseError>>>(items: I) -> ParseError {
    super::super::collect(items).unwrap_err()
}

fn aaf_err(xml: &[u8]) -> ParseError {
    err_of(parse_aaf(xml, "broken.xml"))
}

#[test]
fn mismatched_end_tag_has_line_and_column() {
    let xml = "<ficAlimMENESR>\n<addRequest>\n  <identifier><id>1</id></identifer>\n</addRequest>\n</ficAlimMENESR>\n";
    let e = aaf_err(xml.as_bytes());
    assert_eq!((e.file.as_str(), e.line, e.column), ("broken.xml", 3, 25), "{e}");
    assert!(e.message.contains("identifier"), "{e}");
    assert!(e.to_string().starts_with("broken.xml:3:25: "));
}

#[test]
fn crlf_and_bom_do_not_shift_positions() {
    let xml =
        "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<ficAlimMENESR>\r\n\r\n  <a></b>\r\n</ficAlimMENESR>";
    let e = aaf_err(xml.as_bytes());
    assert_eq!((e.line, e.column), (4, 6), "{e}");
    let e = aaf_err("\u{feff}<a>".as_bytes()); // the BOM is not a column
    assert_eq!((e.line, e.column), (1, 1), "{e}");
    let e = aaf_err("\u{feff}<ficAlimMENESR></b>".as_bytes());
    assert_eq!((e.line, e.column), (1, 16), "{e}");
}

#[test]
fn truncated_files_are_rejected() {
    // The real pupil fixture cut in the middle of a request.
    let mut bytes = Vec::new();
    fixture("EXCERPT_FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml").read_to_end(&mut bytes).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let lines = cut.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let mut parser = parse_aaf(cut, "cut.xml");
    let items: Vec<_> = parser.by_ref().collect();
    let e = items.last().unwrap().clone().unwrap_err();
    assert!(e.message.contains("not closed"), "{e}");
    assert_eq!(e.line, lines);
    // Records read before the cut came out, but the stream ends with the error.
    assert!(items.iter().filter(|i| i.is_ok()).count() >= 3);
    assert!(parser.next().is_none());

    // Cut inside a tag: a syntax error at the tag start.
    let e = aaf_err(b"<ficAlimMENESR>\n<addRequest>\n<attr name=\"sn");
    assert_eq!((e.line, e.column), (3, 1), "{e}");
}

#[test]
fn encodings_are_decoded_as_declared_and_never_guessed() {
    // Latin-9 bytes without a declaration: UTF-8 is assumed, and the bad byte is located.
    let e = aaf_err(b"<ficAlimMENESR>\n<x>Ren\xe9</x></ficAlimMENESR>");
    assert_eq!((e.line, e.column), (2, 7), "{e}");
    assert!(e.message.contains("UTF-8"), "{e}");
    // Same bytes, declared: fine.
    let ok = b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><ficAlimMENESR><x>Ren\xe9</x></ficAlimMENESR>";
    assert!(super::super::collect(parse_aaf(&ok[..], "ok.xml")).is_ok());
    // Unknown encoding: refused up front.
    let e = aaf_err(b"<?xml version=\"1.0\" encoding=\"KLINGON-8\"?><ficAlimMENESR/>");
    assert!(e.message.contains("unsupported encoding"), "{e}");
    // UTF-16 (BOM): refused with a clear message.
    let e = aaf_err(b"\xff\xfe<\0a\0/\0>\0");
    assert!(e.message.contains("UTF-16"), "{e}");
}

#[test]
fn empty_and_non_xml_files() {
    assert!(aaf_err(b"").message.contains("no XML element"));
    assert!(aaf_err(b"  \n\n").message.contains("no XML element"));
    assert!(aaf_err(b"hello").message.contains("outside the root"));
    let e = aaf_err(b"<ficAlimMENESR/>\n<ficAlimMENESR/>");
    assert_eq!((e.line, e.column), (2, 1));
    let e = err_of(parse_aaf(fixture("dossiersco_nomenclature_simple.xml"), "n.xml"));
    assert!(e.message.contains("BEE_NOMENCLATURES"), "{e}");
    let e = err_of(parse_siecle(fixture(ELEVE_AAF), "e.xml"));
    assert!(e.message.contains("ficAlimMENESR"), "{e}");
    // The ENT CAS answer is not a school file.
    let e = err_of(parse_school_xml(fixture("dossiersco_retour_ent_plusieurs_enfants.xml"), "cas.xml"));
    assert!(e.message.contains("cas:serviceResponse"), "{e}");
}

const ELEVE_AAF: &str = "EXCERPT_FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml";

#[test]
fn entities_are_resolved_but_the_dtd_never_read() {
    let xml = r#"<!DOCTYPE ficAlimMENESR SYSTEM "http://example.invalid/never-fetched.dtd" [<!ENTITY co "Collège">]>
<ficAlimMENESR><addRequest><operationalAttributes><attr name="categorieStructure"><value>EtabEducNat</value></attr></operationalAttributes>
<identifier><id>1</id></identifier><attributes>
<attr name="ENTStructureNomCourant"><value>L&apos;ÉCOLE &amp; &#67;O &co;<![CDATA[ <ok> ]]></value></attr>
</attributes></addRequest></ficAlimMENESR>"#;
    let (records, warnings) = run(parse_aaf(xml.as_bytes(), "e.xml"));
    assert_eq!(structures(&records)[0].name, "L'ÉCOLE & CO &co; <ok>");
    assert_eq!(codes(&warnings), ["UNKNOWN_ENTITY"]);
    assert_eq!(warnings[0].line, 4);
}

/// A reader handing out a few bytes at a time, to exercise buffer boundaries.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(self.0.len()).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn tiny_buffers_give_the_same_records_and_positions() {
    let mut bytes = Vec::new();
    fixture(ELEVE_AAF).read_to_end(&mut bytes).unwrap();
    let reference = run(parse_aaf(&bytes[..], "f.xml"));
    for chunk in [1, 3, 7, 64] {
        let reader = BufReader::with_capacity(chunk, Trickle(&bytes, chunk));
        assert_eq!(run(parse_aaf(reader, "f.xml")), reference, "chunk {chunk}");
    }
    // An error position found through a 1-byte buffer.
    let xml = b"<ficAlimMENESR>\n<addRequest>\n  <identifier><id>1</id></identifer>\n";
    let e = err_of(parse_aaf(BufReader::with_capacity(1, Trickle(xml, 1)), "t.xml"));
    assert_eq!((e.line, e.column), (3, 25), "{e}");
}
