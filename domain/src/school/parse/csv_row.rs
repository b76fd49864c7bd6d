//! One row of the département CSV mapped to records, through the shared attribute mapping.

use super::mapping::{attr, checked_uai, finish_guardian, finish_pupil, set_guardian_attr, set_pupil_attr};
use super::records::{FieldIssue, Guardian, Link, Pupil};
use super::values::parse_flag;

// Indexes into COLUMNS.
pub(crate) const UAI: usize = 0;
pub(crate) const INE: usize = 1;
pub(crate) const ELEVE_ID: usize = 2;
pub(crate) const NOM: usize = 3;
pub(crate) const PRENOM: usize = 4;
pub(crate) const NAISSANCE: usize = 5;
pub(crate) const MEF: usize = 6;
pub(crate) const DIVISION: usize = 7;
pub(crate) const BOURSIER: usize = 8;
pub(crate) const ECHELON: usize = 9;
pub(crate) const RESP_ID: usize = 10;
pub(crate) const RESP_NIVEAU: usize = 11;
pub(crate) const LIEN: usize = 12;
pub(crate) const NOM_RESP: usize = 13;
pub(crate) const PRENOM_RESP: usize = 14;
pub(crate) const MEL_RESP: usize = 15;
pub(crate) const TEL_RESP: usize = 16;
pub(crate) const PERCOIT: usize = 17;
pub(crate) const HEBERGE: usize = 18;
pub(crate) const SORTIE: usize = 19;

/// A row's fields, looked up by column index (see [`COLUMNS`](super::csv::COLUMNS)).
pub(crate) struct Row<'a> {
    /// Position of each known column in the file.
    pub cols: &'a [Option<usize>; 20],
    pub fields: &'a [String],
}

impl<'a> Row<'a> {
    /// The trimmed value of a column, `""` when the column is absent.
    pub fn get(&self, c: usize) -> &'a str {
        self.cols.get(c).copied().flatten().and_then(|i| self.fields.get(i)).map_or("", String::as_str)
    }
}

/// Issues with the column they come from.
pub(crate) type Issues = Vec<(usize, FieldIssue)>;

/// The pupil of a row (`get` gives a column's trimmed value, `""` if absent).
pub(crate) fn map_pupil(row: &Row<'_>, key: &str) -> (Pupil, Issues) {
    let get = |c: usize| row.get(c);
    let one = |c: usize| vec![get(c).to_owned()];
    let mut out: Issues = Vec::new();
    let mut issues = Vec::new();
    let mut p = Pupil { key: key.to_owned(), siecle_id: Some(key.to_owned()), ..Pupil::default() };
    let uai = get(UAI);
    if !uai.is_empty() {
        let uai = checked_uai(uai, &mut issues);
        out.extend(issues.drain(..).map(|i| (UAI, i)));
        p.structure_keys = vec![uai.clone()];
        p.uai = Some(uai);
    }
    for (c, a) in [
        (INE, attr::INE),
        (NOM, attr::FAMILY_NAME),
        (PRENOM, attr::GIVEN_NAME),
        (NAISSANCE, attr::BIRTH_DATE),
        (MEF, attr::MEF),
        (DIVISION, attr::CLASSES),
        (BOURSIER, attr::BOURSIER),
        (SORTIE, attr::LEFT_AT),
    ] {
        set_pupil_attr(&mut p, a, &one(c), &mut issues);
        out.extend(issues.drain(..).map(|i| (c, i)));
    }
    p.echelon = match get(ECHELON) {
        "" => None,
        e @ ("1" | "2" | "3") => e.parse().ok(),
        bad => {
            let msg = format!("echelon {bad:?} is not 1, 2 or 3");
            out.push((ECHELON, FieldIssue::dropped("BAD_VALUE", msg)));
            None
        }
    };
    finish_pupil(&mut p, &mut issues);
    out.extend(issues.drain(..).map(|i| (NOM, i)));
    (p, out)
}

/// The guardian and link of a row, if it names a `resp_id`.
pub(crate) fn map_guardian_link(row: &Row<'_>, key: &str) -> (Option<(Guardian, Link)>, Issues) {
    let get = |c: usize| row.get(c);
    let mut out: Issues = Vec::new();
    let resp = get(RESP_ID);
    if resp.is_empty() {
        return (None, out);
    }
    let mut issues = Vec::new();
    let mut g = Guardian { key: resp.to_owned(), pupil_keys: vec![key.to_owned()], ..Guardian::default() };
    for (c, a) in [
        (NOM_RESP, attr::FAMILY_NAME),
        (PRENOM_RESP, attr::GIVEN_NAME),
        (MEL_RESP, attr::MAIL),
        (TEL_RESP, attr::MOBILE),
    ] {
        set_guardian_attr(&mut g, a, &[get(c).to_owned()], &mut issues);
    }
    finish_guardian(&mut g, &mut issues);
    out.extend(issues.drain(..).map(|i| (NOM_RESP, i)));
    let legal_level = match get(RESP_NIVEAU) {
        l @ ("0" | "1" | "2") => l.parse().unwrap_or(0),
        bad => {
            let msg = format!("resp_niveau {bad:?} is not 1 or 2 (0 for a contact)");
            out.push((RESP_NIVEAU, FieldIssue::dropped("BAD_VALUE", msg)));
            0
        }
    };
    let mut flag = |c: usize, what: &str| -> Option<bool> {
        let raw = get(c);
        if raw.is_empty() {
            return None;
        }
        let v = parse_flag(raw);
        if v.is_none() {
            let msg = format!("{what} {raw:?} is not 0 or 1");
            out.push((c, FieldIssue::dropped("BAD_VALUE", msg)));
        }
        v
    };
    let receives_aid = flag(PERCOIT, "percoit_aides");
    let houses_pupil = flag(HEBERGE, "heberge_eleve");
    let link = Link {
        pupil_key: key.to_owned(),
        guardian_key: resp.to_owned(),
        legal_level,
        relation_code: get(LIEN).to_owned(),
        financial: false,
        contact: false,
        receives_aid,
        houses_pupil,
    };
    (Some((g, link)), out)
}

#[cfg(test)]
mod tests {
    use super::super::csv::COLUMNS;
    use super::*;

    #[test]
    fn indexes_match_the_column_table() {
        for (i, name) in [
            (UAI, "uai"),
            (INE, "ine"),
            (ELEVE_ID, "eleve_id_siecle"),
            (NOM, "nom_eleve"),
            (PRENOM, "prenom_eleve"),
            (NAISSANCE, "date_naissance_eleve"),
            (MEF, "code_mef"),
            (DIVISION, "division"),
            (BOURSIER, "boursier"),
            (ECHELON, "echelon"),
            (RESP_ID, "resp_id"),
            (RESP_NIVEAU, "resp_niveau"),
            (LIEN, "lien_parente"),
            (NOM_RESP, "nom_resp"),
            (PRENOM_RESP, "prenom_resp"),
            (MEL_RESP, "mel_resp"),
            (TEL_RESP, "tel_portable_resp"),
            (PERCOIT, "percoit_aides"),
            (HEBERGE, "heberge_eleve"),
            (SORTIE, "date_sortie"),
        ] {
            assert_eq!(COLUMNS[i].0, name);
        }
    }
}
