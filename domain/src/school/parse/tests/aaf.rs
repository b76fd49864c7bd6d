use super::*;
use crate::ids::GradeLevel;
use crate::school::parse::{Category, apply_guardian_patch, apply_pupil_patch, parse_aaf, parse_school_xml};

const ELEVE: &str = "EXCERPT_FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml";
const ETAB: &str = "FULL_ENTTSSERVICES_Complet_20130117_EtabEducNat_0000.xml";
const PERSREL: &str = "clean-FULL_ENTTSSERVICES_Complet_20130117_PersRelEleve_0000.xml";

fn aaf(body: &str) -> (Vec<Record>, Vec<ParseWarning>) {
    let xml = format!("<?xml version=\"1.0\"?>\n<ficAlimMENESR>\n{body}\n</ficAlimMENESR>\n");
    run(parse_aaf(xml.as_bytes(), "inline.xml"))
}

fn add(category: &str, id: &str, attrs: &str) -> String {
    format!(
        "<addRequest><operationalAttributes><attr name=\"categoriePersonne\"><value>{category}</value></attr></operationalAttributes>\
         <identifier><id>{id}</id></identifier><attributes>{attrs}</attributes></addRequest>"
    )
}

#[test]
fn eleve_fixture_pupils_names_classes_levels_links() {
    let mut parser = parse_aaf(fixture(ELEVE), ELEVE);
    let (records, warnings) = run(parser.by_ref());
    let pupils = pupils(&records);
    assert_eq!(pupils.len(), 8);
    assert_eq!(records.len(), 8);
    assert_eq!(parser.stats().format, Some("AAF"));
    assert_eq!(parser.stats().records, 8);

    let first = pupils[0];
    assert_eq!(first.key, "2605692");
    assert_eq!(first.siecle_id.as_deref(), Some("837982"));
    assert_eq!((first.family_name.as_str(), first.usage_name.as_deref()), ("AZOT", Some("Long")));
    assert_eq!(first.given_name, "Kù");
    assert_eq!(first.other_given_names, ["Jetsmao", "Xzuzcosvo", "Pykewi"]);
    assert_eq!(first.birth_date, chrono::NaiveDate::from_ymd_opt(1995, 9, 14));
    assert_eq!(first.structure_keys, ["52006"]);
    assert_eq!(first.classes, ["RUS1TERM"]); // groups (52006$206) are not classes
    assert_eq!(first.boursier, Some(false));
    assert_eq!((first.mef.as_deref(), first.grade), (Some("24133610210"), None)); // CAP: not collège
    assert_eq!(first.mef_label.as_deref(), Some("1CAP2  COIFFURE"), "the label as exported, inner spaces kept");
    assert_eq!(pupils[1].mef_label.as_deref(), Some("5EME"));
    assert_eq!(first.ine, None); // 2013 files have no INE

    // Old link codes: 2 = mother RL1 financial, 1 = father RL2.
    let l = &first.links;
    assert_eq!(l.len(), 2);
    assert_eq!(
        (l[0].guardian_key.as_str(), l[0].relation_code.as_str(), l[0].legal_level, l[0].financial),
        ("2867253", "2", 1, true)
    );
    assert_eq!(
        (l[1].guardian_key.as_str(), l[1].relation_code.as_str(), l[1].legal_level, l[1].financial),
        ("2867254", "1", 2, false)
    );
    assert!(l.iter().all(|x| x.pupil_key == "2605692"));

    // Accented names from the UTF-8 file without declaration.
    let names: Vec<&str> = pupils.iter().map(|p| p.given_name.as_str()).collect();
    assert_eq!(names, ["Kù", "Åslög", "Uò", "Amélie", "Cécile", "Styrbjörn", "Michèle", "Noémie"]);

    // Levels from the MEF prefix.
    let grades: Vec<Option<GradeLevel>> = pupils.iter().map(|p| p.grade).collect();
    use GradeLevel::*;
    assert_eq!(
        grades,
        [
            None,
            Some(Cinquieme),
            Some(Sixieme),
            Some(Troisieme),
            Some(Sixieme),
            Some(Sixieme),
            Some(Sixieme),
            Some(Sixieme)
        ]
    );

    // Class codes with spaces.
    assert_eq!(pupils[4].classes, ["T CAP"]);
    assert_eq!(pupils[6].classes, ["1 STMG 3"]);

    // A contact-only person (4$0$0$1$0) is linked with legal level 0.
    let contact = &pupils[1].links[0];
    assert_eq!(
        (contact.guardian_key.as_str(), contact.relation_code.as_str(), contact.legal_level, contact.contact),
        ("2866652", "4", 0, true)
    );
    assert_eq!(pupils[4].links.len(), 3);

    // The only warning: the CAP MEF, reported on the ENTEleveMEF line.
    assert_eq!(codes(&warnings), ["UNKNOWN_MEF"]);
    assert_eq!((warnings[0].line, warnings[0].column), (30, 1));
    assert_eq!(warnings[0].record_key.as_deref(), Some("2605692"));
}

#[test]
fn etab_fixture_structures_and_bad_uai_warnings() {
    let (records, warnings) = run(parse_aaf(fixture(ETAB), ETAB));
    let s = structures(&records);
    assert_eq!(s.len(), 10);
    assert_eq!(s[0].key, "52000");
    assert_eq!(s[0].uai.as_deref(), Some("1004001V")); // kept despite the check letter
    assert_eq!(s[0].name, "Z.REMP-DIGNE-AIX_MARS.");
    assert_eq!(s[0].kind.as_deref(), Some("SANS OBJET"));
    assert_eq!(s[0].academie.as_deref(), Some("AIX-MARSEILLE"));
    assert_eq!(s[2].city.as_deref(), Some("DIGNE"));
    assert_eq!(s[2].postal_code, None); // <value></value>

    // Six pseudo-structures fail the check letter; the 005x ones are valid.
    assert_eq!(codes(&warnings), ["UAI_CHECK_LETTER"; 6]);
    let flagged: Vec<&str> = warnings.iter().filter_map(|w| w.record_key.as_deref()).collect();
    assert_eq!(flagged, ["52000", "52001", "52004", "52005", "52008", "52009"]);
    assert_eq!((warnings[0].line, warnings[1].line), (11, 37)); // the ENTStructureUAI lines
    assert!(warnings[0].message.contains("1004001V") && warnings[0].message.contains('F'));
    assert!(warnings[1].message.contains("1004002D"));
}

#[test]
fn persrel_fixture_guardians() {
    let (records, warnings) = run(parse_school_xml(fixture(PERSREL), PERSREL));
    assert!(warnings.is_empty(), "{warnings:?}");
    let g = guardians(&records);
    assert_eq!(g.len(), 8);
    let given: Vec<&str> = g.iter().map(|x| x.given_name.as_str()).collect();
    assert_eq!(given, ["Mélodie", "Athéna", "Yóu", "Maïwenn", "Marie-josée", "Uò", "Åslög", "Åke"]);
    assert_eq!(g[0].key, "1986923");
    assert_eq!((g[0].family_name.as_str(), g[0].usage_name.as_deref()), ("LYBLE", Some("Nichols")));
    assert_eq!(g[0].title.as_deref(), Some("M."));
    assert_eq!(g[1].title, None); // <value/>
    assert_eq!((g[0].postal_code.as_deref(), g[0].city.as_deref()), (Some("04100"), Some("MANOSQUE")));
    assert_eq!(g[0].home_phone.as_deref(), Some("0000000000"));
    assert_eq!(g[7].title.as_deref(), Some("Mme"));
}

#[test]
fn modify_and_delete_requests() {
    let body = r#"
<modifyRequest>
<operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr></operationalAttributes>
<identifier><id>2605693</id></identifier>
<modifications>
<modification name="ENTEleveClasses" operation="replace"><value>52008$313</value><value>52008$3 B</value></modification>
<modification name="ENTEleveBoursier" operation="replace"><value>O</value></modification>
<modification name="ENTEleveMEF" operation="replace"><value>10310019110</value></modification>
<modification name="ENTElevePersRelEleve" operation="replace"><value>2866658$10$1$1$1$1</value></modification>
<modification name="ENTPersonDateNaissance" operation="replace"><value>31/02/2010</value></modification>
<modification name="ENTEleveGroupes" operation="add"><value>52008$G1</value></modification>
</modifications>
</modifyRequest>
<modifyRequest>
<operationalAttributes><attr name="categoriePersonne"><value>PersRelEleve</value></attr></operationalAttributes>
<identifier><id>2866658</id></identifier>
<modifications><modification name="mobile" operation="replace"><value/></modification>
<modification name="mail" operation="replace"><value>a.b@example.org</value></modification></modifications>
</modifyRequest>
<deleteRequest>
<operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr></operationalAttributes>
<identifier><id>2605692</id></identifier>
</deleteRequest>"#;
    let (records, warnings) = aaf(body);
    assert_eq!(records.len(), 3);
    // The unsupported modification is reported as it is read, the bad date with its request.
    assert_eq!(codes(&warnings), ["UNSUPPORTED_OPERATION", "BAD_DATE"]);
    assert_eq!((warnings[0].line, warnings[1].line), (13, 12));
    assert_eq!(records[2], Record::Delete { category: Category::Eleve, key: "2605692".into() });

    let Record::Modify { category: Category::Eleve, key, patch } = &records[0] else { panic!("{:?}", records[0]) };
    assert_eq!(key, "2605693");
    assert_eq!(patch.len(), 5); // the "add" operation is not part of the patch
    let mut stored = pupils(&run(parse_aaf(fixture(ELEVE), ELEVE)).0)[1].clone();
    let issues = apply_pupil_patch(&mut stored, patch);
    assert_eq!(issues.iter().map(|i| i.code).collect::<Vec<_>>(), ["BAD_DATE"]);
    assert_eq!(stored.classes, ["313", "3 B"]);
    assert_eq!((stored.boursier, stored.grade), (Some(true), Some(GradeLevel::Troisieme)));
    assert_eq!(stored.links.len(), 1);
    assert_eq!((stored.links[0].relation_code.as_str(), stored.links[0].legal_level), ("10", 1));
    assert_eq!(stored.birth_date, None); // replaced by an invalid date: cleared
    assert_eq!(stored.given_name, "Åslög"); // untouched

    let Record::Modify { category: Category::PersRelEleve, patch, .. } = &records[1] else { panic!() };
    let mut g = crate::school::parse::Guardian { mobile: Some("0600000000".into()), ..Default::default() };
    assert!(apply_guardian_patch(&mut g, patch).is_empty());
    assert_eq!((g.mobile, g.email.as_deref()), (None, Some("a.b@example.org")));
}

#[test]
fn links_are_deduplicated_and_bad_ones_reported() {
    let body = add(
        "Eleve",
        "1",
        r#"<attr name="ENTPersonNomPatro"><value>DUPONT</value></attr><attr name="givenName"><value>Zoé</value></attr>
<attr name="ENTElevePersRelEleve"><value>2000000$10$1$1$1$1</value><value>3000000$20$0$1$0$0</value><value>2000000$10$1$1$1$1</value><value>garbage</value></attr>
<attr name="ENTPersonStructRattach"><value>52006</value><value>52007</value></attr>
<attr name="ENTEleveINE"><value>00000000123</value></attr>"#,
    );
    let (records, warnings) = aaf(&body);
    let p = pupils(&records)[0];
    // Both legal guardians RL=1 (ent-formats.md §1.3), the duplicate dropped.
    assert_eq!(
        p.links.iter().map(|l| (l.guardian_key.as_str(), l.legal_level)).collect::<Vec<_>>(),
        [("2000000", 1), ("3000000", 1)]
    );
    assert_eq!(p.structure_keys, ["52006", "52007"]);
    assert_eq!(p.ine.as_deref(), Some("00000000123")); // kept
    assert_eq!(codes(&warnings), ["DUPLICATE_LINK", "BAD_LINK", "INE_FORMAT"]);
    assert_eq!(warnings.iter().map(|w| w.line).collect::<Vec<_>>(), [4, 4, 6]);
}

#[test]
fn other_categories_are_ignored_and_counted() {
    let body = [
        add("PersEducNat", "9", r#"<attr name="sn"><value>PROF</value></attr>"#),
        add("PersEducNat", "10", ""),
        add("PersRelEleve", "11", r#"<attr name="sn"><value>X</value></attr><attr name="ENTAuxPersRelEleveEleve"><value>1</value><value>2</value></attr>"#),
        "<addRequest><identifier><id>12</id></identifier><attributes/></addRequest>".to_owned(),
    ]
    .join("\n");
    let xml = format!("<ficAlimMENESR>{body}</ficAlimMENESR>");
    let mut parser = parse_aaf(xml.as_bytes(), "x.xml");
    let (records, warnings) = run(parser.by_ref());
    assert_eq!(records.len(), 1);
    let g = guardians(&records)[0];
    assert_eq!((g.family_name.as_str(), g.pupil_keys.clone()), ("X", vec!["1".to_owned(), "2".to_owned()]));
    assert_eq!(codes(&warnings), ["MISSING_CATEGORY"]);
    assert_eq!(parser.stats().ignored_count("PersEducNat"), 2);
    assert_eq!(parser.stats().ignored_count("(no category)"), 1);
}

#[test]
fn latin9_structures_file() {
    // Like the 2020 EtabEducNat export: ISO-8859-15 declared, real Latin-9 bytes (È = C8, œ = BD).
    let mut xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\r\n<!DOCTYPE ficAlimMENESR SYSTEM \"http://example.invalid/ficAlimMENESR.dtd\">\r\n<ficAlimMENESR>\r\n".to_vec();
    xml.extend_from_slice(b"<addRequest><operationalAttributes><attr name=\"categorieStructure\"><value>EtabEducNat</value></attr></operationalAttributes>\r\n");
    xml.extend_from_slice(b"<identifier><id>92001</id></identifier><attributes>\r\n");
    xml.extend_from_slice(
        b"<attr name=\"ENTStructureNomCourant\"><value>COLL\xc8GE$S\xc6UR MARIE C\xbdUR</value></attr>\r\n",
    );
    xml.extend_from_slice(b"<attr name=\"ENTStructureUAI\"><value>0921778h</value></attr><attr name=\"ENTStructureTypeStruct\"><value>COLLEGE</value></attr>\r\n");
    xml.extend_from_slice(b"</attributes></addRequest>\r\n</ficAlimMENESR>\r\n");
    let (records, warnings) = run(parse_aaf(&xml[..], "latin9.xml"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let s = structures(&records)[0];
    assert_eq!(s.name, "COLLÈGE - SÆUR MARIE CœUR");
    assert_eq!(s.uai.as_deref(), Some("0921778H"));
    assert_eq!(s.kind.as_deref(), Some("COLLEGE"));
}
