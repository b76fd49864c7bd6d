//! The one attribute → field mapping, in AAF vocabulary.
//!
//! AAF `addRequest` builds a record by applying each attribute to an empty one, and
//! `modifyRequest` ("replace") applies the same function to the stored record, so both always
//! agree. SIECLE and CSV values are renamed to these attributes and go through the same code, so
//! a date, an INE or a MEF is checked the same way whatever the format.
//!
//! Attribute names and formats: entcore `feeder/.../mapping/aaf/*.json` (ent-formats.md §1.2–1.5).

use crate::ids::{Ine, Uai, grade_from_mef};

use super::records::{FieldIssue, Guardian, Link, Pupil, Structure};
use super::values::{parse_date, parse_flag};

/// AAF attribute names understood by the mapping (others are ignored).
pub mod attr {
    pub const INE: &str = "ENTEleveINE";
    pub const SIECLE_ID: &str = "ENTEleveStructRattachId";
    pub const FAMILY_NAME: &str = "ENTPersonNomPatro";
    pub const USAGE_NAME: &str = "sn";
    pub const GIVEN_NAME: &str = "givenName";
    pub const OTHER_GIVEN_NAMES: &str = "ENTPersonAutresPrenoms";
    pub const BIRTH_DATE: &str = "ENTPersonDateNaissance";
    pub const LINKS: &str = "ENTElevePersRelEleve";
    pub const BOURSIER: &str = "ENTEleveBoursier";
    pub const MEF: &str = "ENTEleveMEF";
    pub const MEF_LABEL: &str = "ENTEleveLibelleMEF";
    pub const STRUCTURES: &str = "ENTPersonStructRattach";
    pub const CLASSES: &str = "ENTEleveClasses";
    pub const LEFT_AT: &str = "ENTEleveDateSortieStructRattach";
    pub const TITLE: &str = "personalTitle";
    pub const MAIL: &str = "mail";
    pub const MOBILE: &str = "mobile";
    pub const HOME_PHONE: &str = "homePhone";
    pub const WORK_PHONE: &str = "telephoneNumber";
    pub const POSTAL_CODE: &str = "ENTPersonCodePostal";
    pub const CITY: &str = "ENTPersonVille";
    pub const PUPILS: &str = "ENTAuxPersRelEleveEleve";
    pub const UAI: &str = "ENTStructureUAI";
    pub const STRUCTURE_NAME: &str = "ENTStructureNomCourant";
    pub const STRUCTURE_KIND: &str = "ENTStructureTypeStruct";
    pub const STRUCTURE_POSTAL_CODE: &str = "postalCode";
    pub const STRUCTURE_CITY: &str = "l";
    pub const ACADEMIE: &str = "ENTServAcAcademie";
}

/// Applies an AAF `modifyRequest` patch ("replace" each attribute) to a stored pupil.
pub fn apply_pupil_patch(p: &mut Pupil, patch: &[(String, Vec<String>)]) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    for (name, values) in patch {
        set_pupil_attr(p, name, values, &mut issues);
    }
    issues
}

/// Applies a patch to a stored guardian.
pub fn apply_guardian_patch(g: &mut Guardian, patch: &[(String, Vec<String>)]) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    for (name, values) in patch {
        set_guardian_attr(g, name, values, &mut issues);
    }
    issues
}

/// Applies a patch to a stored structure.
pub fn apply_structure_patch(s: &mut Structure, patch: &[(String, Vec<String>)]) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    for (name, values) in patch {
        set_structure_attr(s, name, values, &mut issues);
    }
    issues
}

/// Trimmed, non-empty values: `<value/>` and blanks mean "no value".
fn clean(values: &[String]) -> impl Iterator<Item = &str> {
    values.iter().map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn first(values: &[String]) -> Option<String> {
    clean(values).next().map(str::to_owned)
}

fn all_distinct(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in clean(values) {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    out
}

/// Sets one pupil field from one attribute. Unknown attributes are ignored.
pub(crate) fn set_pupil_attr(p: &mut Pupil, name: &str, values: &[String], issues: &mut Vec<FieldIssue>) {
    match name {
        attr::INE => {
            p.ine = first(values).and_then(|raw| Ine::parse_lenient(&raw)).map(|(ine, warning)| {
                if let Some(w) = warning {
                    issues.push(FieldIssue::soft(w.code(), w.to_string()));
                }
                ine.as_str().to_owned()
            });
        }
        attr::SIECLE_ID => p.siecle_id = first(values),
        attr::FAMILY_NAME => p.family_name = first(values).unwrap_or_default(),
        attr::USAGE_NAME => p.usage_name = first(values),
        attr::GIVEN_NAME => p.given_name = first(values).unwrap_or_default(),
        attr::OTHER_GIVEN_NAMES => p.other_given_names = all_distinct(values),
        attr::BIRTH_DATE => p.birth_date = date_value(values, "birth date", issues),
        attr::LEFT_AT => {
            // `struct$dd/mm/yyyy` or a bare date: the date is the last `$` field.
            let dates: Vec<String> = clean(values).map(|v| v.rsplit('$').next().unwrap_or(v).to_owned()).collect();
            p.left_at = date_value(&dates, "leaving date", issues);
        }
        attr::BOURSIER => {
            p.boursier = first(values).and_then(|v| {
                let flag = parse_flag(&v);
                if flag.is_none() {
                    issues.push(FieldIssue::dropped("BAD_VALUE", format!("boursier {v:?} is not O or N")));
                }
                flag
            });
        }
        attr::MEF => {
            p.mef = first(values);
            p.grade = p.mef.as_deref().and_then(grade_from_mef);
            if let (Some(mef), None) = (&p.mef, p.grade) {
                let msg = format!("MEF {mef} is not a known collège level (6e-3e); grade left empty");
                issues.push(FieldIssue::soft("UNKNOWN_MEF", msg));
            }
        }
        attr::MEF_LABEL => p.mef_label = first(values),
        attr::STRUCTURES => p.structure_keys = all_distinct(values),
        attr::CLASSES => {
            // `structJointure$classCode`; the code may contain spaces (`52007$T CAP`).
            let codes: Vec<String> =
                clean(values).map(|v| v.split_once('$').map_or(v, |(_, code)| code).trim().to_owned()).collect();
            p.classes = all_distinct(&codes);
        }
        attr::LINKS => {
            p.links.clear();
            for raw in clean(values) {
                match parse_link(&p.key, raw) {
                    Ok(link) if p.links.iter().any(|l| l.guardian_key == link.guardian_key) => {
                        let msg = format!("person {} is linked twice; the first link is kept", link.guardian_key);
                        issues.push(FieldIssue::soft("DUPLICATE_LINK", msg));
                    }
                    Ok(link) => p.links.push(link),
                    Err(issue) => issues.push(issue),
                }
            }
        }
        _ => {}
    }
}

fn date_value(values: &[String], what: &str, issues: &mut Vec<FieldIssue>) -> Option<chrono::NaiveDate> {
    let raw = first(values)?;
    let date = parse_date(&raw);
    if date.is_none() {
        issues.push(FieldIssue::dropped("BAD_DATE", format!("{what} {raw:?} is not a dd/mm/yyyy date")));
    }
    date
}

/// `jointureRel$lien$respFinancier$respLegal$contact$paiement` (ent-formats.md §1.3):
/// respLegal is 1 or 2 for a legal guardian, 0 otherwise; the `lien` code is kept raw
/// (old 1/2/4 or SIECLE 10/20/…). The `paiement` field is not used.
pub(crate) fn parse_link(pupil_key: &str, raw: &str) -> Result<Link, FieldIssue> {
    let bad = |why: &str| FieldIssue::dropped("BAD_LINK", format!("link {raw:?} ignored: {why}"));
    let f: Vec<&str> = raw.split('$').map(str::trim).collect();
    if f.len() < 4 {
        return Err(bad("expected jointure$lien$financier$legal$contact$paiement"));
    }
    if f[0].is_empty() {
        return Err(bad("no person id"));
    }
    let legal_level = match f[3] {
        "0" | "" => 0,
        "1" => 1,
        "2" => 2,
        _ => return Err(bad("legal level must be 0, 1 or 2")),
    };
    Ok(Link {
        pupil_key: pupil_key.to_owned(),
        guardian_key: f[0].to_owned(),
        legal_level,
        relation_code: f[1].to_owned(),
        financial: f[2] == "1",
        contact: f.get(4).is_some_and(|c| *c == "1"),
        receives_aid: None,
        houses_pupil: None,
    })
}

/// Called once a new pupil has all its attributes: birth name falls back to the usage name
/// (some exports only fill `sn`), and a pupil without any name is flagged.
pub(crate) fn finish_pupil(p: &mut Pupil, issues: &mut Vec<FieldIssue>) {
    if p.family_name.is_empty()
        && let Some(u) = &p.usage_name
    {
        p.family_name = u.clone();
    }
    if p.family_name.is_empty() || p.given_name.is_empty() {
        issues.push(FieldIssue::soft("MISSING_NAME", "the pupil has no family name or no given name"));
    }
}

/// Sets one guardian field from one attribute.
pub(crate) fn set_guardian_attr(g: &mut Guardian, name: &str, values: &[String], _issues: &mut Vec<FieldIssue>) {
    match name {
        attr::TITLE => g.title = first(values),
        attr::FAMILY_NAME => g.family_name = first(values).unwrap_or_default(),
        attr::USAGE_NAME => g.usage_name = first(values),
        attr::GIVEN_NAME => g.given_name = first(values).unwrap_or_default(),
        attr::MAIL => g.email = first(values),
        attr::MOBILE => g.mobile = first(values),
        attr::HOME_PHONE => g.home_phone = first(values),
        attr::WORK_PHONE => g.work_phone = first(values),
        attr::POSTAL_CODE => g.postal_code = first(values),
        attr::CITY => g.city = first(values),
        attr::PUPILS => g.pupil_keys = all_distinct(values),
        _ => {}
    }
}

/// Like [`finish_pupil`], for a new guardian.
pub(crate) fn finish_guardian(g: &mut Guardian, issues: &mut Vec<FieldIssue>) {
    if g.family_name.is_empty()
        && let Some(u) = &g.usage_name
    {
        g.family_name = u.clone();
    }
    if g.family_name.is_empty() && g.given_name.is_empty() {
        issues.push(FieldIssue::soft("MISSING_NAME", "the person has no name"));
    }
}

/// Sets one structure field from one attribute. The UAI is checked softly: AAF files carry
/// pseudo-structures (`1004001V`) whose check letter is wrong.
pub(crate) fn set_structure_attr(s: &mut Structure, name: &str, values: &[String], issues: &mut Vec<FieldIssue>) {
    match name {
        attr::UAI => s.uai = first(values).map(|raw| checked_uai(&raw, issues)),
        attr::STRUCTURE_NAME => {
            // `NOM$STRUCTURE$COURANT`: entcore swaps `$` for `-`; we keep words apart.
            let name = first(values).unwrap_or_default();
            s.name = name.split('$').map(str::trim).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" - ");
        }
        attr::STRUCTURE_KIND => s.kind = first(values),
        attr::STRUCTURE_POSTAL_CODE => s.postal_code = first(values),
        attr::STRUCTURE_CITY => s.city = first(values),
        attr::ACADEMIE => s.academie = first(values),
        _ => {}
    }
}

/// Normalises a UAI, reporting (not refusing) a bad format or check letter.
pub(crate) fn checked_uai(raw: &str, issues: &mut Vec<FieldIssue>) -> String {
    let (uai, problem) = Uai::parse_lenient(raw);
    if let Some(e) = problem {
        issues.push(FieldIssue::soft(e.code(), e.to_string()));
    }
    uai
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn links_old_and_new_codes() {
        let l = parse_link("p", "2867254$1$0$2$0$0").unwrap();
        assert_eq!((l.guardian_key.as_str(), l.relation_code.as_str(), l.legal_level), ("2867254", "1", 2));
        assert!(!l.financial && !l.contact);
        let l = parse_link("p", "2000000$10$1$1$1$1").unwrap();
        assert!(l.financial && l.contact && l.legal_level == 1);
        let l = parse_link("p", "2866652$4$0$0$1$0").unwrap();
        assert!(l.contact && l.legal_level == 0);
        assert_eq!(parse_link("p", "2866652").unwrap_err().code, "BAD_LINK");
        assert_eq!(parse_link("p", "x$1$0$7$0$0").unwrap_err().code, "BAD_LINK");
        assert_eq!(parse_link("p", "$1$0$1$0$0").unwrap_err().code, "BAD_LINK");
    }

    #[test]
    fn patch_replaces_and_clears() {
        let mut p = Pupil { key: "1".into(), classes: v(&["601"]), boursier: Some(false), ..Pupil::default() };
        let issues = apply_pupil_patch(
            &mut p,
            &[
                (attr::CLASSES.into(), v(&["52007$T CAP", "52007$T CAP"])),
                (attr::BOURSIER.into(), v(&["O"])),
                (attr::MEF.into(), v(&["10210001110"])),
                (attr::INE.into(), v(&[""])),
                (attr::BIRTH_DATE.into(), v(&["32/01/2012"])),
            ],
        );
        assert_eq!(p.classes, v(&["T CAP"]));
        assert_eq!(p.boursier, Some(true));
        assert_eq!(p.grade, Some(crate::ids::GradeLevel::Quatrieme));
        assert_eq!(p.ine, None);
        assert_eq!(issues.iter().map(|i| i.code).collect::<Vec<_>>(), ["BAD_DATE"]);
        assert!(issues[0].value_dropped);
    }

    #[test]
    fn structure_name_and_uai() {
        let mut s = Structure::default();
        let issues = apply_structure_patch(
            &mut s,
            &[(attr::STRUCTURE_NAME.into(), v(&["NOM$STRUCTURE$$COURANT"])), (attr::UAI.into(), v(&["1004002d"]))],
        );
        assert_eq!(s.name, "NOM - STRUCTURE - COURANT");
        assert_eq!(s.uai.as_deref(), Some("1004002D"));
        assert_eq!(issues[0].code, "UAI_CHECK_LETTER");
        assert!(!issues[0].value_dropped);
    }
}
