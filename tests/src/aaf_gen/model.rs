//! The data model of the generator: a deterministic random source, name tables, and the
//! pupils and families drawn from them. Everything is a pure function of (seed, index).

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for test data.
pub(super) struct Rng(u64);

impl Rng {
    /// A stream for one entity: (seed, kind, index) → independent sequence.
    pub(super) fn for_entity(seed: u64, kind: u64, index: usize) -> Rng {
        let mut r =
            Rng(seed ^ kind.wrapping_mul(0xA076_1D64_78BD_642F) ^ (index as u64).wrapping_mul(0xE703_7ED1_A0B4_28DB));
        r.next();
        r
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is negligible for test data).
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    pub(super) fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    pub(super) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    pub(super) fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

pub(super) const PUPIL: u64 = 1;
pub(super) const FAMILY: u64 = 2;
pub(super) const SIBLING: u64 = 3;

pub(super) fn is_sibling(seed: u64, i: usize) -> bool {
    i > 0 && Rng::for_entity(seed, SIBLING, i).percent(6)
}

#[rustfmt::skip]
pub(super) const FAMILY_NAMES: &[&str] = &[
    "MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "PETIT", "DURAND", "LEROY", "MOREAU",
    "SIMON", "LAURENT", "LEFÈVRE", "MICHEL", "GARCIA", "DAVID", "BERTRAND", "ROUX", "FOURNIER",
    "GIRARD", "ANDRÉ", "MERCIER", "DUPONT", "LAMBERT", "BONNET", "FRANÇOIS", "MARTINEZ", "NGUYEN",
    "DIALLO", "TRAORÉ", "D'ALMEIDA", "BENOÎT", "CHÂTELAIN", "MÉNARD", "PÉREZ", "BOUAZIZ",
    "DA SILVA", "HADDAD", "KOUASSI", "LE GALL", "N'DIAYE",
];
#[rustfmt::skip]
pub(super) const GIVEN_F: &[&str] = &[
    "Léa", "Chloé", "Zoé", "Inès", "Anaïs", "Maëlys", "Éloïse", "Noémie", "Jade", "Louise", "Emma",
    "Hélène", "Cécile", "Gaëlle", "Amélie", "Océane", "Sarah", "Yasmine", "Aïcha", "Bérénice",
];
#[rustfmt::skip]
pub(super) const GIVEN_M: &[&str] = &[
    "Lucas", "Léo", "Gabriel", "Raphaël", "Noé", "Loïc", "Jérôme", "François", "Hugo", "Adam",
    "Mathéo", "Anthony", "Théo", "Maël", "Joël", "Ibrahim", "Mohamed", "Benoît", "Élie", "Côme",
];
#[rustfmt::skip]
pub(super) const CITIES: &[(&str, &str)] = &[
    ("92220", "BAGNEUX"), ("92160", "ANTONY"), ("92000", "NANTERRE"),
    ("92100", "BOULOGNE-BILLANCOURT"), ("92700", "COLOMBES"), ("92600", "ASNIÈRES-SUR-SEINE"),
    ("92400", "COURBEVOIE"), ("92500", "RUEIL-MALMAISON"), ("92130", "ISSY-LES-MOULINEAUX"),
    ("92140", "CLAMART"), ("92120", "MONTROUGE"), ("92300", "LEVALLOIS-PERRET"),
    ("92330", "SCEAUX"), ("92290", "CHÂTENAY-MALABRY"), ("92230", "GENNEVILLIERS"),
    ("92150", "SURESNES"),
];
#[rustfmt::skip]
pub(super) const COLLEGE_NAMES: &[&str] = &[
    "JOLIOT-CURIE", "ÉVARISTE GALOIS", "ANDRÉ MALRAUX", "PAUL ÉLUARD", "JEAN MOULIN",
    "GEORGES POMPIDOU", "LOUISE MICHEL", "VICTOR HUGO", "SŒUR EMMANUELLE", "HENRI WALLON",
    "ALBERT CAMUS", "MARIE CURIE",
];
/// (MEF, libellé) per level 6e..3e: the standard code and a bilangue variant (ent-formats.md §3.3).
pub(super) const MEFS: [[(&str, &str); 2]; 4] = [
    [("10010012110", "6EME"), ("1001000B11A", "6EME BILANGUE")],
    [("10110001110", "5EME"), ("1011000B11A", "5EME BILANGUE")],
    [("10210001110", "4EME"), ("1021000E11A", "4EME BILANGUE")],
    [("10310019110", "3EME"), ("1031000E11A", "3EME BILANGUE")],
];

pub(super) fn uai_of(c: usize) -> String {
    let n = 921_000 + c * 7;
    format!("{n:07}{}", mod23(&format!("{n:07}")))
}

/// The UAI / INE-BEA key letter (ent-formats.md §3.1).
pub(super) fn mod23(digits: &str) -> char {
    const ALPHABET: &[u8; 23] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    let rem = digits.bytes().fold(0u64, |r, b| (r * 10 + u64::from(b.wrapping_sub(b'0'))) % 23);
    char::from(ALPHABET[rem as usize])
}

pub(super) struct Pupil {
    pub(super) id: usize,
    pub(super) college: usize,
    pub(super) female: bool,
    pub(super) given: &'static str,
    pub(super) birth: String,
    pub(super) level: usize,
    pub(super) bilangue: bool,
    pub(super) class: String,
    pub(super) boursier: bool,
    pub(super) ine: String,
}

impl Pupil {
    pub(super) fn new(seed: u64, i: usize, colleges: usize, year: i32) -> Pupil {
        let mut r = Rng::for_entity(seed, PUPIL, i);
        let level = r.below(4);
        let female = r.percent(50);
        let given = if female { r.pick(GIVEN_F) } else { r.pick(GIVEN_M) };
        // 6e pupils are 11 at the rentrée; 5% repeated a year.
        let born = year - 11 - level as i32 - i32::from(r.percent(5));
        let birth = format!("{:02}/{:02}/{born}", 1 + r.below(28), 1 + r.below(12));
        let n = 1 + r.below(6);
        let class = if r.percent(10) {
            format!("{} {}", 6 - level, char::from(b'A' + n as u8 - 1))
        } else {
            format!("{}{n:02}", 6 - level)
        };
        let ine = if r.percent(50) {
            let d = r.digits(10);
            format!("{d}{}", mod23(&d))
        } else {
            format!("{}{}{}", r.digits(9), char::from(b'A' + r.below(26) as u8), char::from(b'A' + r.below(26) as u8))
        };
        Pupil {
            id: i,
            college: r.below(colleges),
            female,
            given,
            birth,
            level,
            bilangue: r.percent(15),
            class,
            boursier: r.percent(12),
            ine,
        }
    }
}

/// The people of a family: (name, legal level, relation code) per member, guardian ids from the
/// index of the family's first pupil.
pub(super) struct Family {
    pub(super) seed: u64,
    pub(super) first: usize,
    pub(super) name: &'static str,
    pub(super) mother_name: &'static str,
    pub(super) members: Vec<(&'static str, u8, &'static str)>,
    pub(super) city: usize,
}

impl Family {
    pub(super) fn new(seed: u64, first: usize) -> Family {
        let mut r = Rng::for_entity(seed, FAMILY, first);
        let name = r.pick(FAMILY_NAMES);
        let mother_name = if r.percent(60) { r.pick(FAMILY_NAMES) } else { name };
        let mother = r.pick(GIVEN_F);
        let father = r.pick(GIVEN_M);
        let both_rl1 = r.percent(30);
        let members = match r.below(100) {
            0..80 => vec![(mother, 1, "10"), (father, if both_rl1 { 1 } else { 2 }, "20")],
            80..88 => vec![(if r.percent(50) { mother } else { father }, 1, if r.percent(50) { "10" } else { "20" })],
            _ => vec![(mother, 1, "10"), (r.pick(GIVEN_F), 0, r.pick(&["39", "90", "50"]))],
        };
        Family { seed, first, name, mother_name, members, city: r.below(CITIES.len()) }
    }

    pub(super) fn guardian_id(&self, k: usize) -> usize {
        5_000_000 + self.first * 3 + k
    }
}
