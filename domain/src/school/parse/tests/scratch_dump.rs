use super::*;
#[test]
fn dump() {
    for f in ["EXCERPT_FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml","FULL_ENTTSSERVICES_Complet_20130117_EtabEducNat_0000.xml","clean-FULL_ENTTSSERVICES_Complet_20130117_PersRelEleve_0000.xml","dossiersco_eleves_avec_adresse_avec_double_structure.xml","dossiersco_nomenclature_simple.xml","dossiersco_responsables_avec_adresses_simple.xml","dossiersco_retour_ent_plusieurs_enfants.xml"] {
        let mut p = super::super::parse_school_xml(fixture(f), f);
        println!("=== {f}");
        for item in p.by_ref() { println!("{item:?}"); }
        println!("{:?}", p.stats());
    }
}
