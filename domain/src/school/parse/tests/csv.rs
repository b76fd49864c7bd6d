use super::*;
use crate::ids::GradeLevel;
use crate::school::parse::parse_csv;

const HEADER: &str = "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;echelon;resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;date_sortie";

fn csv(text: &str) -> (Vec<Record>, Vec<ParseWarning>) {
    run(parse_csv(text.as_bytes(), "in.csv"))
}

#[test]
fn utf8_with_bom_any_column_order_and_case() {
    // Columns shuffled, upper-cased, annotated, plus an unknown one; quoted field with a ';'.
    let text = "\u{feff}PRENOM_ELEVE;Nom_Eleve;eleve_id_siecle;UAI;date_naissance_eleve;code_mef;division;boursier(O/N);echelon;resp_id;resp_niveau*;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;commentaire\r\n\
Zoé;N'GUYEN;1001;0921778H;03/04/2013;10010012110;6A;O;2;501;1;10;N'GUYEN;Thị Hương;m@example.org;0612345678;1;1;\"a; b\"\r\n\
Zoé;N'GUYEN;1001;0921778H;03/04/2013;10010012110;6A;O;2;502;2;20;MARTIN;Jérôme;;;0;0;\r\n\
Élie;ÇA;1002;0921778H;2012-12-31;10110001110;5 B;N;;;;;;;;;;;\r\n";
    let mut parser = parse_csv(text.as_bytes(), "bom.csv");
    let (records, warnings) = run(parser.by_ref());
    assert!(warnings.is_empty(), "{warnings:?}");
    let p = pupils(&records);
    assert_eq!(p.len(), 2); // the two rows of pupil 1001 are grouped
    assert_eq!((p[0].key.as_str(), p[0].given_name.as_str(), p[0].family_name.as_str()), ("1001", "Zoé", "N'GUYEN"));
    assert_eq!(
        (p[0].uai.as_deref(), p[0].grade, p[0].classes.as_slice()),
        (Some("0921778H"), Some(GradeLevel::Sixieme), &["6A".to_owned()][..])
    );
    assert_eq!((p[0].boursier, p[0].echelon), (Some(true), Some(2)));
    assert_eq!(p[0].ine, None); // no ine column: optional
    assert_eq!((p[1].given_name.as_str(), p[1].family_name.as_str()), ("Élie", "ÇA"));
    assert_eq!(p[1].birth_date, chrono::NaiveDate::from_ymd_opt(2012, 12, 31));
    assert_eq!((p[1].boursier, p[1].echelon, p[1].classes[0].as_str()), (Some(false), None, "5 B"));

    let g = guardians(&records);
    assert_eq!(g.len(), 2);
    assert_eq!(
        (g[0].given_name.as_str(), g[0].email.as_deref(), g[0].mobile.as_deref()),
        ("Thị Hương", Some("m@example.org"), Some("0612345678"))
    );
    assert_eq!(g[1].pupil_keys, ["1001"]);
    let l = links(&records);
    assert_eq!(
        (l[0].legal_level, l[0].relation_code.as_str(), l[0].receives_aid, l[0].houses_pupil),
        (1, "10", Some(true), Some(true))
    );
    assert_eq!((l[1].legal_level, l[1].guardian_key.as_str(), l[1].receives_aid), (2, "502", Some(false)));
    assert_eq!(parser.stats().records, 6);
    // Order: pupil, then its guardian and link.
    assert!(
        matches!(records[0], Record::Pupil(_))
            && matches!(records[1], Record::Guardian(_))
            && matches!(records[2], Record::Link(_))
    );
}

#[test]
fn latin9_bytes_are_decoded() {
    let text = format!(
        "{HEADER}\n0921778H;070832327JA;7;LEFÈVRE;Hélène;01/02/2012;10210001110;4C;N;;9;1;10;CŒUR;Gaëlle;;;1;1;\n"
    );
    let (bytes, _, _) = encoding_rs::ISO_8859_15.encode(&text);
    assert!(std::str::from_utf8(&bytes).is_err());
    let (records, warnings) = run(parse_csv(&bytes[..], "latin9.csv"));
    assert_eq!(codes(&warnings), ["CSV_LATIN9"]);
    let p = pupils(&records)[0];
    assert_eq!(
        (p.family_name.as_str(), p.given_name.as_str(), p.ine.as_deref()),
        ("LEFÈVRE", "Hélène", Some("070832327JA"))
    );
    assert_eq!(p.grade, Some(GradeLevel::Quatrieme));
    let g = guardians(&records)[0];
    assert_eq!((g.family_name.as_str(), g.given_name.as_str()), ("CŒUR", "Gaëlle"));
}

#[test]
fn missing_required_columns_reject_the_file() {
    let e = super::super::collect(parse_csv("uai;nom_eleve\n0921778H;X\n".as_bytes(), "short.csv")).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("short.csv", 1));
    assert!(e.message.contains("eleve_id_siecle") && e.message.contains("resp_niveau"), "{e}");
    let e = super::super::collect(parse_csv(HEADER.replace(';', ",").as_bytes(), "comma.csv")).unwrap_err();
    assert!(e.message.contains("separator"), "{e}");
    let e = super::super::collect(parse_csv(&b""[..], "empty.csv")).unwrap_err();
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn bad_rows_are_skipped_with_warnings() {
    let rows = [
        "0921778H;;1;A;Bob;31/02/2013;10010012110;6A;N;;11;1;20;A;Max;;;;;", // bad date
        "0921778H;;1;A;Bob;01/02/2013;10010012110;6A;N;;12;7;10;A;Eve;;;;;", // bad level
        "0921778H;;2;B;Lou;01/02/2013;10010012110;6A;N;4;13;1;10;B;Ana;;;;;", // bad echelon
        "0921778H;;3;C;Léo;01/02/2013;10010012110;6A;N;;14;1;10;C;Ugo;;;2;;", // bad flag
        "0921778H;;4;D",                                                     // short row
        ";;;;;;;;;;;;;;;;;;;",                                               // blank: ignored
        "1004001V;;5;E;Ian;01/02/2013;24133610210;6A;peut-etre;;15;1;10;E;Tom;;;;;", // soft + bad boursier
        "0921778H;;1;A;Bob;01/02/2013;10010012110;6A;N;;16;2;20;A;Max;;;;;", // good
    ];
    let text = format!("{HEADER}\n{}\n", rows.join("\n"));
    let mut parser = parse_csv(text.as_bytes(), "bad.csv");
    let (records, warnings) = run(parser.by_ref());
    let got: Vec<(u64, u64, &str)> = warnings.iter().map(|w| (w.line, w.column, w.code)).collect();
    assert_eq!(
        got,
        [
            (2, 6, "BAD_DATE"),
            (2, 0, "ROW_SKIPPED"),
            (3, 12, "BAD_VALUE"),
            (3, 0, "ROW_SKIPPED"),
            (4, 10, "BAD_VALUE"),
            (4, 0, "ROW_SKIPPED"),
            (5, 18, "BAD_VALUE"),
            (5, 0, "ROW_SKIPPED"),
            (6, 0, "ROW_LENGTH"),
            (8, 1, "UAI_CHECK_LETTER"),
            (8, 7, "UNKNOWN_MEF"),
            (8, 9, "BAD_VALUE"),
            (8, 0, "ROW_SKIPPED"),
        ]
    );
    // Only the last row survives: the pupil is emitted then, with its guardian and link.
    assert_eq!(records.len(), 3);
    assert_eq!(pupils(&records)[0].key, "1");
    assert_eq!(links(&records)[0].guardian_key, "16");
    assert_eq!(parser.stats().ignored_count("skipped rows"), 6);
}

#[test]
fn soft_warnings_once_per_pupil_and_non_contiguous_rows() {
    let text = format!(
        "{HEADER}\n\
1004001V;;1;A;Bob;01/02/2013;10010012110;6A;N;;11;1;20;A;Max;;;;;\n\
1004001V;;1;A;Bob;01/02/2013;10010012110;6A;N;;12;1;10;A;Eve;;;;;\n\
0921778H;;2;B;Lou;01/02/2013;10010012110;6A;N;;13;1;10;B;Ana;;;;;\n\
1004001V;;1;A;Bob;01/02/2013;10010012110;6A;N;;14;0;39;A;Tim;;;;;\n\
0921778H;;3;C;Léo;01/02/2013;10010012110;6A;N;;;;;;;;;;;\n"
    );
    let (records, warnings) = csv(&text);
    // UAI warning reported with each emission of pupil 1 (rows 2 and 5), not on row 3.
    assert_eq!(
        warnings.iter().map(|w| (w.line, w.code)).collect::<Vec<_>>(),
        [(2, "UAI_CHECK_LETTER"), (5, "UAI_CHECK_LETTER")]
    );
    let keys: Vec<&str> = pupils(&records).iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["1", "2", "1", "3"]); // rows of pupil 1 not contiguous: emitted again
    assert_eq!(links(&records).len(), 4); // pupil 3 has no guardian
    assert_eq!(links(&records)[3].legal_level, 0);
}
