use super::*;
use crate::ids::GradeLevel;
use crate::school::parse::{
    Category, Guardian, apply_guardian_patch, apply_pupil_patch, parse_school_xml, parse_siecle,
};

const ELEVES: &str = "dossiersco_eleves_avec_adresse_avec_double_structure.xml";
const RESP: &str = "dossiersco_responsables_avec_adresses_simple.xml";
const NOMENCLATURE: &str = "dossiersco_nomenclature_simple.xml";

fn latin9(xml: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::ISO_8859_15.encode(xml);
    assert!(!unmappable);
    bytes.into_owned()
}

#[test]
fn eleves_fixture_pupil_division_but_not_group() {
    let mut parser = parse_siecle(fixture(ELEVES), ELEVES);
    let (records, warnings) = run(parser.by_ref());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(records.len(), 3);
    let s = structures(&records)[0];
    assert_eq!((s.key.as_str(), s.uai.as_deref()), ("0660864F", Some("0660864F")));

    let p = pupils(&records)[0];
    assert_eq!((p.key.as_str(), p.siecle_id.as_deref()), ("1541944", Some("1541944")));
    assert_eq!(p.ine.as_deref(), Some("070876696HA"));
    assert_eq!((p.family_name.as_str(), p.given_name.as_str(), p.usage_name.as_deref()), ("ESCAGLIA", "Jeanine", None));
    assert_eq!(p.birth_date, chrono::NaiveDate::from_ymd_opt(2002, 6, 21));
    // CODE_MEF of the pupil, not the one of SCOLARITE_AN_DERNIER (4e).
    assert_eq!((p.mef.as_deref(), p.grade), (Some("10310019110"), Some(GradeLevel::Troisieme)));
    assert_eq!((p.uai.as_deref(), p.structure_keys.as_slice()), (Some("0660864F"), &["0660864F".to_owned()][..]));
    assert_eq!(p.left_at, None);

    // Division 301 (D) is a class; _301P1 (G) is a group.
    let Record::Modify { category: Category::Eleve, key, patch } = &records[2] else { panic!("{:?}", records[2]) };
    assert_eq!(key, "1541944");
    let mut pupil = p.clone();
    assert!(apply_pupil_patch(&mut pupil, patch).is_empty());
    assert_eq!(pupil.classes, ["301"]);

    assert_eq!(parser.stats().format, Some("BEE_ELEVES"));
    assert_eq!(parser.stats().ignored_count("OPTIONS"), 1);
}

#[test]
fn responsables_fixture_guardians_links_and_addresses() {
    let (records, warnings) = run(parse_school_xml(fixture(RESP), RESP));
    assert!(warnings.is_empty(), "{warnings:?}");
    let g = guardians(&records);
    // PERSONNE_ID as an attribute.
    assert_eq!(g.iter().map(|x| x.key.as_str()).collect::<Vec<_>>(), ["209401", "209406", "209400"]);
    assert_eq!(
        (g[0].title.as_deref(), g[0].family_name.as_str(), g[0].given_name.as_str()),
        (Some("MME"), "ROCK", "Maryline")
    );
    assert_eq!(
        (g[0].mobile.as_deref(), g[0].home_phone.as_deref(), g[0].work_phone.as_deref()),
        (Some("+33764444288"), Some("+33231204444"), None)
    );
    assert_eq!(g[0].email.as_deref(), Some("rock33445570@hotmail.fr"));

    // PERSONNE_ID and ELEVE_ID as child elements; mixed 0/1 and true/false booleans.
    let l = links(&records);
    assert_eq!(l.len(), 3);
    assert_eq!(
        (l[0].pupil_key.as_str(), l[0].guardian_key.as_str(), l[0].legal_level, l[0].relation_code.as_str()),
        ("610308", "209401", 1, "10")
    );
    assert_eq!((l[0].financial, l[0].receives_aid, l[0].houses_pupil), (true, Some(true), Some(true)));
    // Split family: the second legal guardian neither houses the child nor receives the aid.
    assert_eq!(
        (l[1].legal_level, l[1].financial, l[1].receives_aid, l[1].houses_pupil),
        (1, false, Some(false), Some(false))
    );

    // The shared ADRESSE (after the PERSONNES) comes as one patch per person.
    let patches: Vec<_> = records
        .iter()
        .filter_map(|r| {
            if let Record::Modify { category: Category::PersRelEleve, key, patch } = r {
                Some((key, patch))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(patches.len(), 3);
    let mut rock = g[0].clone();
    assert!(apply_guardian_patch(&mut rock, patches[0].1).is_empty());
    assert_eq!((rock.postal_code.as_deref(), rock.city.as_deref()), (Some("14270"), Some("MEZIDON VALLEE D AUGE")));
}

#[test]
fn nomenclature_fixture_latin9_label() {
    let mut parser = parse_siecle(fixture(NOMENCLATURE), NOMENCLATURE);
    let (records, _) = run(parser.by_ref());
    assert_eq!(
        records,
        [Record::Mef {
            code: "10110001110".into(),
            label: "5EME".into(),
            edition_label: Some("5ème".into()),
            grade: Some(GradeLevel::Cinquieme)
        }]
    );
    assert_eq!(parser.stats().ignored_count("MATIERES"), 1);
}

#[test]
fn older_vocabulary_and_element_ids() {
    let xml = r#"<?xml version="1.0" encoding="ISO-8859-15"?>
<BEE_RESPONSABLES VERSION="1.0"><PARAMETRES><UAJ>0921778H</UAJ></PARAMETRES><DONNEES>
<ADRESSES><ADRESSE ADRESSE_ID="7"><CODE_POSTAL>92220</CODE_POSTAL><LIBELLE_POSTAL>BAGNEUX</LIBELLE_POSTAL></ADRESSE></ADRESSES>
<PERSONNES><PERSONNE><PERSONNE_ID>55</PERSONNE_ID><NOM_DE_FAMILLE>LEFÈVRE</NOM_DE_FAMILLE><NOM_USAGE>MARTIN</NOM_USAGE><PRENOM>Hélène</PRENOM><ADRESSE_ID>7</ADRESSE_ID></PERSONNE></PERSONNES>
<RESPONSABLES>
<RESPONSABLE_ELEVE ELEVE_ID="1" PERSONNE_ID="55"><RESP_LEGAL>2</RESP_LEGAL><RESP_FINANCIER>O</RESP_FINANCIER><PERS_CONTACT>N</PERS_CONTACT><CODE_PARENTE>20</CODE_PARENTE></RESPONSABLE_ELEVE>
<RESPONSABLE_ELEVE><ELEVE_ID>2</ELEVE_ID><PERSONNE_ID>55</PERSONNE_ID><NIVEAU_RESPONSABILITE>3</NIVEAU_RESPONSABILITE><PERCOIT_LES_AIDES>peut-être</PERCOIT_LES_AIDES></RESPONSABLE_ELEVE>
<RESPONSABLE_ELEVE><ELEVE_ID>3</ELEVE_ID></RESPONSABLE_ELEVE>
</RESPONSABLES></DONNEES></BEE_RESPONSABLES>"#;
    let (records, warnings) = run(parse_siecle(&latin9(xml)[..], "old.xml"));
    let g: &Guardian = guardians(&records)[0];
    assert_eq!(
        (g.key.as_str(), g.family_name.as_str(), g.usage_name.as_deref(), g.given_name.as_str()),
        ("55", "LEFÈVRE", Some("MARTIN"), "Hélène")
    );
    // The address came first: filled directly.
    assert_eq!((g.postal_code.as_deref(), g.city.as_deref()), (Some("92220"), Some("BAGNEUX")));
    let l = links(&records);
    assert_eq!(l.len(), 2);
    assert_eq!((l[0].pupil_key.as_str(), l[0].legal_level, l[0].financial, l[0].contact), ("1", 2, true, false));
    assert_eq!((l[1].legal_level, l[1].receives_aid), (0, None));
    assert_eq!(codes(&warnings), ["BAD_VALUE", "MISSING_ID"]);
    assert_eq!((warnings[0].line, warnings[1].line), (7, 8));
}

#[test]
fn latin9_pupils_with_soft_problems() {
    let xml = r#"<?xml version="1.0" encoding="ISO-8859-15"?>
<BEE_ELEVES VERSION="3.0"><PARAMETRES><UAJ>0921779H</UAJ><ANNEE_SCOLAIRE>2024</ANNEE_SCOLAIRE></PARAMETRES>
<DONNEES><ELEVES>
<ELEVE ELEVE_ID="10"><ID_NATIONAL>0000000001X</ID_NATIONAL><NOM_DE_FAMILLE>DE LA FŒUILLÉE</NOM_DE_FAMILLE><PRENOM>Chloé</PRENOM><PRENOM2>Maëlys</PRENOM2><PRENOM3>Anaïs</PRENOM3>
<DATE_NAISS>02/03/2013</DATE_NAISS><CODE_MEF>1001000B11A</CODE_MEF><DATE_SORTIE>15/01/2025</DATE_SORTIE></ELEVE>
<ELEVE><NOM_DE_FAMILLE>SANS ID</NOM_DE_FAMILLE></ELEVE>
</ELEVES><BOURSES><BOURSE ELEVE_ID="10"><CODE_BOURSE>C</CODE_BOURSE></BOURSE></BOURSES></DONNEES></BEE_ELEVES>"#;
    let (records, warnings) = run(parse_siecle(&latin9(xml)[..], "e.xml"));
    let p = pupils(&records)[0];
    assert_eq!((p.family_name.as_str(), p.given_name.as_str()), ("DE LA FŒUILLÉE", "Chloé"));
    assert_eq!(p.other_given_names, ["Maëlys", "Anaïs"]);
    assert_eq!(p.grade, Some(GradeLevel::Sixieme));
    assert_eq!(p.left_at, chrono::NaiveDate::from_ymd_opt(2025, 1, 15));
    assert_eq!(p.uai.as_deref(), Some("0921779H")); // kept despite the check letter
    assert_eq!(p.ine.as_deref(), Some("0000000001X"));
    assert_eq!(codes(&warnings), ["UAI_CHECK_LETTER", "INE_CHECK_LETTER", "MISSING_ID"]);
    let Some(Record::Modify { patch, .. }) = records.last() else { panic!() };
    let mut boursier = p.clone();
    apply_pupil_patch(&mut boursier, patch);
    assert_eq!(boursier.boursier, Some(true));
}

#[test]
fn structures_file_is_skipped_and_unknown_roots_refused() {
    let xml = "<BEE_STRUCTURES><PARAMETRES><UAJ>0921778H</UAJ></PARAMETRES><DONNEES/></BEE_STRUCTURES>";
    let mut parser = parse_siecle(xml.as_bytes(), "s.xml");
    assert_eq!(run(parser.by_ref()).0.len(), 0);
    assert_eq!(parser.stats().ignored_count("BEE_STRUCTURES"), 1);
    let e = super::super::collect(parse_siecle("<BEE_AUTRE/>".as_bytes(), "x.xml")).unwrap_err();
    assert!(e.message.contains("BEE_AUTRE"), "{e}");
}
