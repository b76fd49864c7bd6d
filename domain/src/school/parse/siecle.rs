//! SIECLE "BEE" XML exports, which a collège can send (ent-formats.md §2).
//!
//! The root names the file: `BEE_ELEVES` (pupils), `BEE_RESPONSABLES` (guardians and links),
//! `BEE_NOMENCLATURES` (MEF labels); `BEE_STRUCTURES` is recognised and skipped. Every file
//! starts with `PARAMETRES/UAJ`, the school's UAI.
//!
//! SIECLE spreads one pupil over several sections: `ELEVES/ELEVE` first, then
//! `STRUCTURES/STRUCTURES_ELEVE` (divisions and groups) and `BOURSES`. To stay streaming, the
//! pupil is emitted when its `ELEVE` closes and the later sections are emitted as
//! [`Record::Modify`] patches (AAF attribute names, applied with `apply_pupil_patch`).
//! Likewise a guardian's postal code and city come from the `ADRESSES` section as a patch; that
//! needs a map from `ADRESSE_ID` to person ids (or to postal code and city when the addresses
//! come first), the only per-file state: small, a SIECLE file covers one school.
//!
//! Vocabulary differences handled: `PERSONNE_ID`/`ELEVE_ID` as an attribute or a child element;
//! the legal level from `NIVEAU_RESPONSABILITE` (1 = legal guardian, any other value = not) or
//! the older `RESP_LEGAL` (0/1/2); booleans as `0/1`, `true/false` or `O/N`. The per-pupil
//! bourse form (`BOURSE ELEVE_ID` + `CODE_BOURSE`) is unverified (marked `[U]` in ent-formats.md);
//! pupils listed there are marked boursiers, others are left unknown.

use std::collections::HashMap;
use std::io::BufRead;

use crate::ids::grade_from_mef;

use super::mapping::{attr, checked_uai, finish_guardian, finish_pupil, set_guardian_attr, set_pupil_attr};
use super::position::Pos;
use super::records::{Category, FieldIssue, Guardian, Link, Pupil, Record, Structure};
use super::values::parse_flag;
use super::xml::{Cx, Handler, XmlParser};

/// Streams the records of one SIECLE BEE file. See [`XmlParser`] for the iteration contract.
pub fn parse_siecle<R: BufRead>(reader: R, file_name: &str) -> XmlParser<R> {
    XmlParser::new(reader, file_name, Box::new(SiecleHandler::default()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Root {
    #[default]
    Unknown,
    Eleves,
    Responsables,
    Nomenclatures,
    Skipped,
}

/// An element that becomes one record, with its direct children's text.
struct Open {
    name: &'static str,
    depth: usize,
    pos: Pos,
    attrs: Vec<(String, String)>,
    fields: Vec<(String, String)>,
    /// `STRUCTURE` children of `STRUCTURES_ELEVE`: (code, type).
    structures: Vec<(String, String)>,
    structure: (String, String),
}

impl Open {
    /// First non-empty value of an attribute or a direct child with this name.
    fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .chain(self.fields.iter())
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .next()
    }

    fn values(&self, names: &[&str]) -> Vec<String> {
        names.iter().filter_map(|n| self.get(n)).map(str::to_owned).collect()
    }
}

#[derive(Default)]
pub(crate) struct SiecleHandler {
    root: Root,
    uai: Option<String>,
    open: Option<Open>,
    /// Guardians waiting for an address that comes later: ADRESSE_ID → PERSONNE_IDs.
    waiting: HashMap<String, Vec<String>>,
    /// Addresses seen before their guardians: ADRESSE_ID → (postal code, city).
    addresses: HashMap<String, (Vec<String>, Vec<String>)>,
}

/// Which element opens a record, under which parent, in which file.
fn record_element(root: Root, parent: &str, name: &str) -> Option<&'static str> {
    Some(match (root, parent, name) {
        (Root::Eleves, "ELEVES", "ELEVE") => "ELEVE",
        (Root::Eleves, "STRUCTURES", "STRUCTURES_ELEVE") => "STRUCTURES_ELEVE",
        (Root::Eleves, "BOURSES", "BOURSE") => "BOURSE",
        (Root::Responsables, "PERSONNES", "PERSONNE") => "PERSONNE",
        (Root::Responsables, "RESPONSABLES", "RESPONSABLE_ELEVE") => "RESPONSABLE_ELEVE",
        (Root::Responsables, "ADRESSES", "ADRESSE") => "ADRESSE",
        (Root::Nomenclatures, "MEFS", "MEF") => "MEF",
        _ => return None,
    })
}

impl Handler for SiecleHandler {
    fn start(&mut self, cx: &mut Cx<'_>, name: &str, attrs: &[(String, String)]) -> Result<(), String> {
        if cx.depth == 1 {
            let (root, format) = match name {
                "BEE_ELEVES" => (Root::Eleves, "BEE_ELEVES"),
                "BEE_RESPONSABLES" => (Root::Responsables, "BEE_RESPONSABLES"),
                "BEE_NOMENCLATURES" => (Root::Nomenclatures, "BEE_NOMENCLATURES"),
                "BEE_STRUCTURES" => (Root::Skipped, "BEE_STRUCTURES"),
                _ => {
                    return Err(format!("not a SIECLE BEE file: unknown root element <{name}>"));
                }
            };
            self.root = root;
            cx.stats.format = Some(format);
            if root == Root::Skipped {
                cx.stats.ignore(format);
            }
            return Ok(());
        }
        if self.open.is_none()
            && let Some(kind) = record_element(self.root, cx.parent, name)
        {
            self.open = Some(Open {
                name: kind,
                depth: cx.depth,
                pos: cx.pos,
                attrs: attrs.to_vec(),
                fields: Vec::new(),
                structures: Vec::new(),
                structure: (String::new(), String::new()),
            });
        }
        Ok(())
    }

    fn end(&mut self, cx: &mut Cx<'_>, name: &str, text: &str) -> Result<(), String> {
        let text = text.trim();
        if let Some(open) = &mut self.open {
            if cx.depth == open.depth + 1 {
                if name == "STRUCTURE" {
                    let s = std::mem::take(&mut open.structure);
                    open.structures.push(s);
                } else {
                    open.fields.push((name.to_owned(), text.to_owned()));
                }
            } else if cx.depth == open.depth + 2 && cx.parent == "STRUCTURE" {
                match name {
                    "CODE_STRUCTURE" => open.structure.0 = text.to_owned(),
                    "TYPE_STRUCTURE" => open.structure.1 = text.to_owned(),
                    _ => {}
                }
            } else if cx.depth == open.depth
                && name == open.name
                && let Some(open) = self.open.take()
            {
                self.finish_record(cx, open);
            }
            return Ok(());
        }
        match (cx.parent, name) {
            ("PARAMETRES", "UAJ") => {
                let mut issues = Vec::new();
                self.uai = Some(checked_uai(text, &mut issues)).filter(|u| !u.is_empty());
                cx.issues(cx.pos, text, issues);
            }
            (_, "PARAMETRES") if self.root == Root::Eleves => match &self.uai {
                Some(uai) => {
                    let s = Structure { key: uai.clone(), uai: Some(uai.clone()), ..Structure::default() };
                    cx.record(Record::Structure(s));
                }
                None => cx.warn(cx.pos, None, "MISSING_UAI", "no PARAMETRES/UAJ: pupils will have no school"),
            },
            ("DONNEES", section) if !self.handles(section) => cx.stats.ignore(section),
            _ => {}
        }
        Ok(())
    }
}

impl SiecleHandler {
    /// Sections of `DONNEES` read for this kind of file; the others are counted as ignored.
    fn handles(&self, section: &str) -> bool {
        match self.root {
            Root::Eleves => matches!(section, "ELEVES" | "STRUCTURES" | "BOURSES"),
            Root::Responsables => matches!(section, "PERSONNES" | "RESPONSABLES" | "ADRESSES"),
            Root::Nomenclatures => section == "MEFS",
            Root::Unknown | Root::Skipped => false,
        }
    }

    fn finish_record(&mut self, cx: &mut Cx<'_>, open: Open) {
        let id_name = match open.name {
            "ELEVE" | "STRUCTURES_ELEVE" | "BOURSE" => "ELEVE_ID",
            "PERSONNE" => "PERSONNE_ID",
            "ADRESSE" => "ADRESSE_ID",
            "MEF" => "CODE_MEF",
            _ => "",
        };
        if open.name == "RESPONSABLE_ELEVE" {
            return self.finish_link(cx, &open);
        }
        let Some(key) = open.get(id_name).map(str::to_owned) else {
            cx.warn(open.pos, None, "MISSING_ID", format!("<{}> without {id_name} ignored", open.name));
            return;
        };
        let mut issues: Vec<FieldIssue> = Vec::new();
        match open.name {
            "ELEVE" => {
                let mut p =
                    Pupil { key: key.clone(), siecle_id: Some(key.clone()), uai: self.uai.clone(), ..Pupil::default() };
                p.structure_keys = self.uai.iter().cloned().collect();
                let mut ine = open.values(&["ID_NATIONAL", "INE_RNIE", "INE_BEA"]);
                ine.truncate(1);
                for (a, v) in [
                    (attr::INE, ine),
                    (attr::FAMILY_NAME, open.values(&["NOM_DE_FAMILLE"])),
                    (attr::USAGE_NAME, open.values(&["NOM_USAGE"])),
                    (attr::GIVEN_NAME, open.values(&["PRENOM"])),
                    (attr::OTHER_GIVEN_NAMES, open.values(&["PRENOM2", "PRENOM3"])),
                    (attr::BIRTH_DATE, open.values(&["DATE_NAISS"])),
                    (attr::MEF, open.values(&["CODE_MEF"])),
                    (attr::LEFT_AT, open.values(&["DATE_SORTIE"])),
                ] {
                    set_pupil_attr(&mut p, a, &v, &mut issues);
                }
                finish_pupil(&mut p, &mut issues);
                cx.issues(open.pos, &key, issues);
                cx.record(Record::Pupil(p));
            }
            "STRUCTURES_ELEVE" => {
                let mut divisions = Vec::new();
                for (code, kind) in &open.structures {
                    match kind.as_str() {
                        "D" if !code.is_empty() => divisions.push(code.clone()),
                        "D" | "G" => {}
                        _ => cx.warn(
                            open.pos,
                            Some(&key),
                            "BAD_VALUE",
                            format!("TYPE_STRUCTURE {kind:?} is neither D nor G"),
                        ),
                    }
                }
                let patch = vec![(attr::CLASSES.to_owned(), divisions)];
                cx.record(Record::Modify { category: Category::Eleve, key, patch });
            }
            "BOURSE" => {
                let patch = vec![(attr::BOURSIER.to_owned(), vec!["O".to_owned()])];
                cx.record(Record::Modify { category: Category::Eleve, key, patch });
            }
            "PERSONNE" => {
                let mut g = Guardian { key: key.clone(), ..Guardian::default() };
                for (a, tag) in [
                    (attr::TITLE, "LC_CIVILITE"),
                    (attr::FAMILY_NAME, "NOM_DE_FAMILLE"),
                    (attr::USAGE_NAME, "NOM_USAGE"),
                    (attr::GIVEN_NAME, "PRENOM"),
                    (attr::MAIL, "MEL"),
                    (attr::MOBILE, "TEL_PORTABLE"),
                    (attr::HOME_PHONE, "TEL_PERSONNEL"),
                    (attr::WORK_PHONE, "TEL_PROFESSIONNEL"),
                ] {
                    set_guardian_attr(&mut g, a, &open.values(&[tag]), &mut issues);
                }
                if let Some(address) = open.get("ADRESSE_ID") {
                    match self.addresses.get(address) {
                        Some((cp, city)) => {
                            set_guardian_attr(&mut g, attr::POSTAL_CODE, cp, &mut issues);
                            set_guardian_attr(&mut g, attr::CITY, city, &mut issues);
                        }
                        None => self.waiting.entry(address.to_owned()).or_default().push(key.clone()),
                    }
                }
                finish_guardian(&mut g, &mut issues);
                cx.issues(open.pos, &key, issues);
                cx.record(Record::Guardian(g));
            }
            "ADRESSE" => {
                let cp = open.values(&["CODE_POSTAL"]);
                let mut city = open.values(&["LIBELLE_POSTAL", "LL_COMMUNE_INSEE", "COMMUNE_ETRANGERE"]);
                city.truncate(1);
                match self.waiting.remove(&key) {
                    Some(people) => {
                        let patch = vec![(attr::POSTAL_CODE.to_owned(), cp), (attr::CITY.to_owned(), city)];
                        for person in people {
                            cx.record(Record::Modify {
                                category: Category::PersRelEleve,
                                key: person,
                                patch: patch.clone(),
                            });
                        }
                    }
                    None => {
                        self.addresses.insert(key, (cp, city));
                    }
                }
            }
            "MEF" => {
                let label = open.get("LIBELLE_LONG").unwrap_or_default().to_owned();
                let edition_label = open.get("LIBELLE_EDITION").map(str::to_owned);
                let grade = grade_from_mef(&key);
                cx.record(Record::Mef { code: key, label, edition_label, grade });
            }
            _ => {}
        }
    }

    fn finish_link(&mut self, cx: &mut Cx<'_>, open: &Open) {
        let (Some(pupil), Some(person)) = (open.get("ELEVE_ID"), open.get("PERSONNE_ID")) else {
            cx.warn(open.pos, None, "MISSING_ID", "<RESPONSABLE_ELEVE> without ELEVE_ID and PERSONNE_ID ignored");
            return;
        };
        let mut warn = |code: &'static str, msg: String| cx.warn(open.pos, Some(pupil), code, msg);
        let mut flag = |tag: &str| -> Option<bool> {
            let raw = open.get(tag)?;
            let v = parse_flag(raw);
            if v.is_none() {
                warn("BAD_VALUE", format!("{tag} {raw:?} is not a yes/no value"));
            }
            v
        };
        let financial = flag("PAIE_FRAIS_SCOLAIRES").or_else(|| flag("RESP_FINANCIER")).unwrap_or(false);
        let contact = flag("PERS_CONTACT").unwrap_or(false);
        let receives_aid = flag("PERCOIT_LES_AIDES");
        let houses_pupil = flag("HEBERGE_ELEVE");
        let legal_level = match (open.get("RESP_LEGAL"), open.get("NIVEAU_RESPONSABILITE")) {
            (Some(l @ ("0" | "1" | "2")), _) => l.parse().unwrap_or(0),
            (None, Some("1")) => 1,
            (None, Some("2" | "3") | None) => 0,
            (Some(bad), _) | (None, Some(bad)) => {
                cx.warn(
                    open.pos,
                    Some(pupil),
                    "BAD_VALUE",
                    format!("responsibility level {bad:?} unknown; not a legal guardian"),
                );
                0
            }
        };
        let link = Link {
            pupil_key: pupil.to_owned(),
            guardian_key: person.to_owned(),
            legal_level,
            relation_code: open.get("CODE_PARENTE").unwrap_or_default().to_owned(),
            financial,
            contact,
            receives_aid,
            houses_pupil,
        };
        cx.record(Record::Link(link));
    }
}
