//! Roster files written by tests: AAF requests, SIECLE pupils in Latin-9, a département CSV.

/// A département CSV: pupil 501 on two rows (two guardians) and again, not next to the others,
/// at the end; pupil 502 at a school whose UAI has a wrong check letter.
pub const CSV: &str = "uai;ine;eleve_id_siecle;nom_eleve;prenom_eleve;date_naissance_eleve;code_mef;division;boursier;echelon;\
resp_id;resp_niveau;lien_parente;nom_resp;prenom_resp;mel_resp;tel_portable_resp;percoit_aides;heberge_eleve;date_sortie\r\n\
0921778H;070832327JA;501;LEFÈVRE;Chloé;02/03/2013;10010012110;6 A;O;2;9001;1;10;LEFÈVRE;Hélène;h@example.org;0600000001;1;1;\r\n\
0921778H;070832327JA;501;LEFÈVRE;Chloé;02/03/2013;10010012110;6 A;O;2;9002;2;20;MARTIN;Jérôme;;0600000002;0;0;\r\n\
0921779H;;502;CŒUR;Noé;04/05/2012;10110001110;5 B;N;;9003;1;10;CŒUR;Zoé;;;;;\r\n\
0921778H;070832327JA;501;LEFÈVRE;Chloé;02/03/2013;10010012110;6 A;O;2;9001;1;10;LEFÈVRE;Hélène;h@example.org;0600000001;1;1;\r\n";

/// A SIECLE pupils file in Latin-9 for school `uai`: (ELEVE_ID, family name, given name,
/// DATE_SORTIE).
pub fn siecle_eleves(uai: &str, pupils: &[(&str, &str, &str, Option<&str>)]) -> Vec<u8> {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?>\n<BEE_ELEVES VERSION=\"3.0\"><PARAMETRES><UAJ>{uai}</UAJ></PARAMETRES><DONNEES><ELEVES>\n"
    );
    for (id, family, given, left) in pupils {
        let left = left.map(|d| format!("<DATE_SORTIE>{d}</DATE_SORTIE>")).unwrap_or_default();
        xml.push_str(&format!(
            "<ELEVE ELEVE_ID=\"{id}\"><NOM_DE_FAMILLE>{family}</NOM_DE_FAMILLE><PRENOM>{given}</PRENOM><DATE_NAISS>02/03/2013</DATE_NAISS><CODE_MEF>10010012110</CODE_MEF>{left}</ELEVE>\n"
        ));
    }
    xml.push_str("</ELEVES></DONNEES></BEE_ELEVES>\n");
    latin9(&xml)
}

/// ISO-8859-15 bytes of a text (the test data only uses characters it has).
pub fn latin9(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            'Œ' => 0xBC,
            'œ' => 0xBD,
            'Š' => 0xA6,
            'š' => 0xA8,
            'Ž' => 0xB4,
            'ž' => 0xB8,
            'Ÿ' => 0xBE,
            '€' => 0xA4,
            c => u8::try_from(u32::from(c)).unwrap_or_else(|_| panic!("{c} is not Latin-9")),
        })
        .collect()
}

/// The body of an AAF file from its requests.
pub fn aaf(requests: &[String]) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ficAlimMENESR>\n{}\n</ficAlimMENESR>\n", requests.join("\n"))
}

fn category_attr(category: &str) -> &'static str {
    if category == "EtabEducNat" { "categorieStructure" } else { "categoriePersonne" }
}

fn values(vs: &[&str]) -> String {
    if vs.is_empty() {
        return "<value/>".to_owned();
    }
    vs.iter().map(|v| format!("<value>{v}</value>")).collect()
}

fn add(category: &str, id: &str, attrs: &[(&str, &[&str])]) -> String {
    let attrs: String = attrs.iter().map(|(n, vs)| format!("<attr name=\"{n}\">{}</attr>", values(vs))).collect();
    format!(
        "<addRequest><operationalAttributes><attr name=\"{}\"><value>{category}</value></attr></operationalAttributes>\
         <identifier><id>{id}</id></identifier><attributes>{attrs}</attributes></addRequest>",
        category_attr(category)
    )
}

/// An AAF `modifyRequest` replacing these attributes of record `id` of `category`.
pub fn modify(category: &str, id: &str, mods: &[(&str, &[&str])]) -> String {
    let mods: String = mods
        .iter()
        .map(|(n, vs)| format!("<modification name=\"{n}\" operation=\"replace\">{}</modification>", values(vs)))
        .collect();
    format!(
        "<modifyRequest><operationalAttributes><attr name=\"{}\"><value>{category}</value></attr></operationalAttributes>\
         <identifier><id>{id}</id></identifier><modifications>{mods}</modifications></modifyRequest>",
        category_attr(category)
    )
}

/// An AAF `deleteRequest` for record `id` of `category`.
pub fn delete(category: &str, id: &str) -> String {
    format!(
        "<deleteRequest><operationalAttributes><attr name=\"{}\"><value>{category}</value></attr></operationalAttributes>\
         <identifier><id>{id}</id></identifier></deleteRequest>",
        category_attr(category)
    )
}

/// A collège (`EtabEducNat`) with its UAI and `TYPE$NAME` name.
pub fn structure(id: &str, uai: &str, name: &str) -> String {
    add(
        "EtabEducNat",
        id,
        &[("ENTStructureUAI", &[uai]), ("ENTStructureNomCourant", &[name]), ("ENTStructureTypeStruct", &["COLLEGE"])],
    )
}

/// A 6e pupil of `structure`, class `class`, naming its guardians in `links`
/// (`id$code$legal$financial$aid$houses`).
pub fn eleve(id: &str, family: &str, given: &str, structure: &str, class: &str, links: &[&str]) -> String {
    let class = format!("{structure}${class}");
    add(
        "Eleve",
        id,
        &[
            ("ENTPersonNomPatro", &[family]),
            ("givenName", &[given]),
            ("ENTPersonDateNaissance", &["04/07/2013"]),
            ("ENTPersonStructRattach", &[structure]),
            ("ENTEleveClasses", &[&class]),
            ("ENTEleveMEF", &["10010012110"]),
            ("ENTEleveBoursier", &["N"]),
            ("ENTElevePersRelEleve", links),
        ],
    )
}

/// A guardian (`PersRelEleve`) naming the pupils in their care.
pub fn parent(id: &str, family: &str, given: &str, pupils: &[&str]) -> String {
    add(
        "PersRelEleve",
        id,
        &[("ENTPersonNomPatro", &[family]), ("givenName", &[given]), ("ENTAuxPersRelEleveEleve", pupils)],
    )
}
