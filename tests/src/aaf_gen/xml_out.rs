//! Streaming writers of the AAF files: chunking, encodings (UTF-8, ISO-8859-15), XML escaping,
//! and the attributes of each request as in the real exports (fixtures/ent).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::model::{CITIES, COLLEGE_NAMES, FAMILY, FAMILY_NAMES, Family, MEFS, Pupil, Rng, uai_of};

#[derive(Clone, Copy)]
pub(super) enum Enc {
    Utf8,
    Latin9,
}

/// Writes records into `<base>_NNNN.xml` files of at most `per_file` records.
pub(super) struct Chunked {
    pub(super) dir: PathBuf,
    pub(super) base: String,
    pub(super) per_file: usize,
    pub(super) enc: Enc,
    pub(super) in_file: usize,
    pub(super) out: Option<Out>,
    pub(super) files: Vec<PathBuf>,
}

pub(super) struct Out {
    pub(super) w: BufWriter<File>,
    pub(super) enc: Enc,
}

impl Chunked {
    pub(super) fn new(dir: &Path, base: String, per_file: usize, enc: Enc) -> Chunked {
        Chunked { dir: dir.to_owned(), base, per_file, enc, in_file: 0, out: None, files: Vec::new() }
    }

    pub(super) fn open(&mut self) -> io::Result<()> {
        let path = self.dir.join(format!("{}_{:04}.xml", self.base, self.files.len()));
        let mut out = Out { w: BufWriter::with_capacity(256 * 1024, File::create(&path)?), enc: self.enc };
        let enc = match self.enc {
            Enc::Utf8 => "UTF-8",
            Enc::Latin9 => "ISO-8859-15",
        };
        out.raw(&format!("<?xml version=\"1.0\" encoding=\"{enc}\"?>\n<!DOCTYPE ficAlimMENESR SYSTEM \"ficAlimMENESR.dtd\">\n<ficAlimMENESR>\n<!-- versionAF=\"AAF-VE1301\" -->\n"))?;
        self.files.push(path);
        self.out = Some(out);
        self.in_file = 0;
        Ok(())
    }

    pub(super) fn close(&mut self) -> io::Result<()> {
        if let Some(mut out) = self.out.take() {
            out.raw("</ficAlimMENESR>\n")?;
            out.w.flush()?;
        }
        Ok(())
    }

    pub(super) fn next_record(&mut self) -> io::Result<&mut Out> {
        if self.out.is_none() || self.in_file == self.per_file {
            self.close()?;
            self.open()?;
        }
        self.in_file += 1;
        self.out.as_mut().ok_or_else(|| io::Error::other("no open file"))
    }

    pub(super) fn finish(mut self) -> io::Result<Vec<PathBuf>> {
        if self.files.is_empty() {
            self.open()?;
        }
        self.close()?;
        Ok(self.files)
    }
}

impl Out {
    /// Markup and ASCII text, encoded.
    pub(super) fn raw(&mut self, s: &str) -> io::Result<()> {
        match self.enc {
            Enc::Utf8 => self.w.write_all(s.as_bytes()),
            Enc::Latin9 => {
                let bytes: Vec<u8> = s.chars().map(latin9).collect();
                self.w.write_all(&bytes)
            }
        }
    }

    pub(super) fn request(
        &mut self,
        category_attr: &str,
        category: &str,
        id: &str,
        attrs: &[(&str, Vec<String>)],
    ) -> io::Result<()> {
        let mut s = format!(
            "<addRequest>\n<operationalAttributes><attr name=\"{category_attr}\"><value>{category}</value></attr></operationalAttributes>\n<identifier><id>{id}</id></identifier>\n<attributes>\n"
        );
        for (name, values) in attrs {
            s.push_str("<attr name=\"");
            s.push_str(name);
            s.push_str("\">");
            if values.is_empty() {
                s.push_str("<value/>");
            }
            for v in values {
                s.push_str("<value>");
                escape_into(&mut s, v);
                s.push_str("</value>");
            }
            s.push_str("</attr>\n");
        }
        s.push_str("</attributes>\n</addRequest>\n");
        self.raw(&s)
    }
}

/// ISO-8859-15 byte of a character (`?` if it has none; our data always has one).
pub(super) fn latin9(c: char) -> u8 {
    match c {
        '€' => 0xA4,
        'Š' => 0xA6,
        'š' => 0xA8,
        'Ž' => 0xB4,
        'ž' => 0xB8,
        'Œ' => 0xBC,
        'œ' => 0xBD,
        'Ÿ' => 0xBE,
        '\u{A4}' | '\u{A6}' | '\u{A8}' | '\u{B4}' | '\u{B8}' | '\u{BC}'..='\u{BE}' => b'?',
        c if u32::from(c) < 0x100 => u32::from(c) as u8,
        _ => b'?',
    }
}

pub(super) fn escape_into(s: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            _ => s.push(c),
        }
    }
}

pub(super) fn one(v: impl Into<String>) -> Vec<String> {
    vec![v.into()]
}

pub(super) fn write_structure(out: &mut Out, c: usize) -> io::Result<()> {
    let id = (920_000 + c).to_string();
    let uai = uai_of(c);
    let (cp, city) = CITIES[c % CITIES.len()];
    let name = format!("CLG${}", COLLEGE_NAMES[c % COLLEGE_NAMES.len()]);
    out.request(
        "categorieStructure",
        "EtabEducNat",
        &id,
        &[
            ("ENTStructureJointure", one(&id)),
            ("ENTStructureUAI", one(&uai)),
            ("ENTEtablissementUAI", one(&uai)),
            ("ENTStructureSIREN", vec![]),
            ("ENTStructureNomCourant", one(name)),
            ("ENTStructureTypeStruct", one("COLLEGE")),
            ("ENTEtablissementContrat", one("PU")),
            ("postalCode", one(cp)),
            ("l", one(city)),
            ("ENTServAcAcademie", one("VERSAILLES")),
        ],
    )
}

pub(super) fn write_pupil(out: &mut Out, p: &Pupil, f: &Family) -> io::Result<()> {
    let id = (3_000_000 + p.id).to_string();
    let structure = (920_000 + p.college).to_string();
    let (mef, label) = MEFS[p.level][usize::from(p.bilangue)];
    let links: Vec<String> = f
        .members
        .iter()
        .enumerate()
        .map(|(k, (_, level, code))| {
            let (fin, contact, pay) = if k == 0 { (1, 1, 1) } else { (0, u8::from(*level == 0), 0) };
            format!("{}${code}${fin}${level}${contact}${pay}", f.guardian_id(k))
        })
        .collect();
    out.request(
        "categoriePersonne",
        "Eleve",
        &id,
        &[
            ("ENTPersonJointure", one(&id)),
            ("ENTEleveINE", one(&p.ine)),
            ("ENTEleveStructRattachId", one((1_000_000 + p.id).to_string())),
            ("ENTPersonDateNaissance", one(&p.birth)),
            ("ENTPersonNomPatro", one(f.name)),
            ("sn", one(f.name)),
            ("givenName", one(p.given)),
            ("personalTitle", one(if p.female { "Mlle" } else { "M." })),
            ("ENTElevePersRelEleve", links),
            ("ENTEleveBoursier", one(if p.boursier { "O" } else { "N" })),
            ("ENTEleveRegime", one("DEMI-PENSIONNAIRE DANS L'ETABLISSEMENT")),
            ("ENTEleveMEF", one(mef)),
            ("ENTEleveLibelleMEF", one(label)),
            ("ENTPersonStructRattach", one(&structure)),
            ("ENTEleveClasses", one(format!("{structure}${}", p.class))),
            ("ENTEleveGroupes", if p.level > 0 { one(format!("{structure}$LV2 ESP")) } else { vec![] }),
        ],
    )
}

pub(super) fn write_guardian(out: &mut Out, f: &Family, k: usize, pupils: std::ops::Range<usize>) -> io::Result<()> {
    let id = f.guardian_id(k).to_string();
    let (given, _, code) = f.members[k];
    let mut r = Rng::for_entity(f.seed, FAMILY + 10 + k as u64, f.first);
    let (birth_name, title) = match code {
        "10" => (f.mother_name, "Mme"),
        "20" => (f.name, "M."),
        _ => (r.pick(FAMILY_NAMES), "Mme"),
    };
    let (cp, city) = CITIES[f.city];
    let email_name: String = given.chars().filter(char::is_ascii_alphabetic).collect::<String>().to_ascii_lowercase();
    out.request(
        "categoriePersonne",
        "PersRelEleve",
        &id,
        &[
            ("ENTPersonJointure", one(&id)),
            ("ENTPersonDateNaissance", vec![]),
            ("ENTPersonNomPatro", one(birth_name)),
            ("sn", one(if code == "10" { f.name } else { birth_name })),
            ("givenName", one(given)),
            ("personalTitle", one(title)),
            ("homePhone", one(format!("01{}", r.digits(8)))),
            ("mobile", one(format!("06{}", r.digits(8)))),
            ("mail", one(format!("{email_name}.{id}@example.org"))),
            ("ENTPersonAdresse", one(format!("{} RUE DE LA RÉPUBLIQUE$$$", 1 + r.below(120)))),
            ("ENTPersonCodePostal", one(cp)),
            ("ENTPersonVille", one(city)),
            ("ENTPersonPays", one("FRANCE")),
            ("ENTAuxPersRelEleveEleve", pupils.map(|i| (3_000_000 + i).to_string()).collect()),
        ],
    )
}
