//! Synthetic AAF sets, for load tests and benchmarks of the importer.
//!
//! Writes what an académie sends for the Hauts-de-Seine: one `EtabEducNat` file (~120 collèges
//! with valid `092` UAIs, in ISO-8859-15 like the real 2020 export), `Eleve` files and
//! `PersRelEleve` files in UTF-8, split every 50,000 records into `_0000`, `_0001`… as real sets
//! are (ent-formats.md §1.1). Data follow the shapes of the real fixtures: MEFs of 6e–3e (with
//! bilangue variants), ~12% boursiers, accented names, `jointure$lien$fin$legal$contact$paie`
//! links with SIECLE codes, two legal guardians (sometimes both RL1), some contact-only people
//! (level 0), siblings sharing their guardians (~1.8 distinct guardians per pupil overall).
//!
//! Deterministic for a seed: every record is a pure function of (seed, index) through a local
//! splitmix64, so no dependency's random stream can change the output. Std only, streaming
//! (`BufWriter`), constant memory.

mod model;
mod xml_out;

use std::io;
use std::path::{Path, PathBuf};

use model::{Family, Pupil, is_sibling};
use xml_out::{Chunked, Enc, write_guardian, write_pupil, write_structure};

/// What to generate. [`GenOptions::new`] gives the realistic defaults.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub pupils: usize,
    pub seed: u64,
    /// File name prefix, e.g. `ENT92`.
    pub prefix: String,
    /// `YYYYMMDD` in the file names; also the school year (rentrée of that year).
    pub date: String,
    pub colleges: usize,
    /// Records per file before a new `_NNNN` chunk starts.
    pub chunk_size: usize,
}

impl GenOptions {
    pub fn new(pupils: usize, seed: u64) -> Self {
        GenOptions { pupils, seed, prefix: "ENT92".into(), date: "20250901".into(), colleges: 120, chunk_size: 50_000 }
    }
}

/// The files written and what they contain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedSet {
    pub structure_files: Vec<PathBuf>,
    pub pupil_files: Vec<PathBuf>,
    pub guardian_files: Vec<PathBuf>,
    pub structures: usize,
    pub pupils: usize,
    /// Distinct guardians (and contacts), one `PersRelEleve` record each.
    pub guardians: usize,
    /// Pupil → person links (`ENTElevePersRelEleve` values).
    pub links: usize,
    /// Links with legal level 1 or 2.
    pub legal_links: usize,
    /// Links with legal level 0 (contacts).
    pub contact_links: usize,
    pub boursiers: usize,
    /// Pupils sharing the guardians of the previous pupil.
    pub siblings: usize,
}

impl GeneratedSet {
    /// Every file, structures first, then pupils, then guardians (the import order).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.structure_files.iter().chain(&self.pupil_files).chain(&self.guardian_files).map(PathBuf::as_path)
    }

    /// Total `addRequest` records.
    pub fn records(&self) -> usize {
        self.structures + self.pupils + self.guardians
    }
}

/// Writes a set of `pupils` pupils into `dir` (created if needed) with the default options.
pub fn write_aaf_set(dir: &Path, pupils: usize, seed: u64) -> io::Result<GeneratedSet> {
    write_aaf_set_with(dir, &GenOptions::new(pupils, seed))
}

/// Writes a set with explicit options.
pub fn write_aaf_set_with(dir: &Path, opts: &GenOptions) -> io::Result<GeneratedSet> {
    std::fs::create_dir_all(dir)?;
    let colleges = opts.colleges.max(1);
    let chunk = opts.chunk_size.max(1);
    let year: i32 = opts.date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(2025);
    let base = |kind: &str| format!("{}_Complet_{}_{kind}", opts.prefix, opts.date);
    let mut set = GeneratedSet { structures: colleges, pupils: opts.pupils, ..GeneratedSet::default() };

    let mut w = Chunked::new(dir, base("EtabEducNat"), usize::MAX, Enc::Latin9);
    for c in 0..colleges {
        write_structure(w.next_record()?, c)?;
    }
    set.structure_files = w.finish()?;

    let mut w = Chunked::new(dir, base("Eleve"), chunk, Enc::Utf8);
    let mut family = Family::new(opts.seed, 0);
    for i in 0..opts.pupils {
        if i > 0 && !is_sibling(opts.seed, i) {
            family = Family::new(opts.seed, i);
        } else if i > 0 {
            set.siblings += 1;
        }
        let p = Pupil::new(opts.seed, i, colleges, year);
        set.boursiers += usize::from(p.boursier);
        for (_, level, _) in &family.members {
            set.links += 1;
            if *level > 0 { set.legal_links += 1 } else { set.contact_links += 1 }
        }
        write_pupil(w.next_record()?, &p, &family)?;
    }
    set.pupil_files = w.finish()?;

    let mut w = Chunked::new(dir, base("PersRelEleve"), chunk, Enc::Utf8);
    let mut i = 0;
    while i < opts.pupils {
        let mut end = i + 1;
        while end < opts.pupils && is_sibling(opts.seed, end) {
            end += 1;
        }
        let family = Family::new(opts.seed, i);
        for (k, _) in family.members.iter().enumerate() {
            write_guardian(w.next_record()?, &family, k, i..end)?;
            set.guardians += 1;
        }
        i = end;
    }
    set.guardian_files = w.finish()?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::model::{mod23, uai_of};
    use super::xml_out::latin9;
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aaf_gen_{}_{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn read_all(set: &GeneratedSet) -> Vec<Vec<u8>> {
        set.files().map(|f| std::fs::read(f).unwrap()).collect()
    }

    #[test]
    fn deterministic_for_a_seed() {
        let (a, b, c) = (temp_dir("det_a"), temp_dir("det_b"), temp_dir("det_c"));
        let sa = write_aaf_set(&a, 300, 42).unwrap();
        let sb = write_aaf_set(&b, 300, 42).unwrap();
        let sc = write_aaf_set(&c, 300, 43).unwrap();
        assert_eq!(read_all(&sa), read_all(&sb));
        assert_ne!(read_all(&sa), read_all(&sc));
        for d in [a, b, c] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn chunks_names_and_counts() {
        let dir = temp_dir("chunks");
        let opts = GenOptions { chunk_size: 100, ..GenOptions::new(250, 7) };
        let set = write_aaf_set_with(&dir, &opts).unwrap();
        let names: Vec<String> =
            set.pupil_files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            [
                "ENT92_Complet_20250901_Eleve_0000.xml",
                "ENT92_Complet_20250901_Eleve_0001.xml",
                "ENT92_Complet_20250901_Eleve_0002.xml"
            ]
        );
        assert_eq!(set.structure_files.len(), 1);
        assert!(set.structure_files[0].ends_with("ENT92_Complet_20250901_EtabEducNat_0000.xml"));
        let count = |files: &[PathBuf]| -> usize {
            files
                .iter()
                .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).matches("<addRequest>").count())
                .sum()
        };
        assert_eq!(count(&set.pupil_files), 250);
        assert_eq!(count(&set.guardian_files), set.guardians);
        assert_eq!(count(&set.structure_files), 120);
        assert_eq!(set.links, set.legal_links + set.contact_links);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn realistic_proportions() {
        let dir = temp_dir("ratios");
        let set = write_aaf_set(&dir, 5_000, 1).unwrap();
        let per_pupil = set.guardians as f64 / set.pupils as f64;
        assert!((1.7..1.9).contains(&per_pupil), "{per_pupil}");
        let boursiers = set.boursiers as f64 / set.pupils as f64;
        assert!((0.10..0.14).contains(&boursiers), "{boursiers}");
        assert!(set.contact_links > 0 && set.siblings > 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn uais_are_valid_092_and_structures_are_latin9() {
        for c in 0..120 {
            let uai = uai_of(c);
            assert!(uai.starts_with("092") && uai.len() == 8, "{uai}");
        }
        // Worked example of ent-formats.md §3.1.
        assert_eq!(mod23("0921778"), 'H');
        assert_eq!(latin9('É'), 0xC9);
        assert_eq!(latin9('Œ'), 0xBC);
    }
}
