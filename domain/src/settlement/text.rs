//! Text as SEPA files carry it: the EPC's Latin character set (`a-z A-Z 0-9 / - ? : ( ) . , ' +`
//! and space), every other letter transliterated, cut to the field's length.
//!
//! Accents go through Unicode decomposition (`unicode-normalization`, already in the tree
//! through `url`): "é" is "e" + a combining accent, the accent is dropped, which covers every
//! accented Latin letter without a hand-kept table that would miss some. The few letters that
//! do not decompose (ß, æ, œ, ø, ł, đ, þ) and the usual punctuation have a small table.
//! Anything else becomes a space: a bank refuses the whole file for one bad character.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::money::Cents;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || " /-?:().,'+".contains(c)
}

fn replacement(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'Æ' => "AE",
        'æ' => "ae",
        'Œ' => "OE",
        'œ' => "oe",
        'Ø' => "O",
        'ø' => "o",
        'Ł' => "L",
        'ł' => "l",
        'Đ' | 'Ð' => "D",
        'đ' | 'ð' => "d",
        'Þ' => "TH",
        'þ' => "th",
        '&' => "+",
        '’' | '‘' | '`' | '"' | '«' | '»' | '“' | '”' => "'",
        '–' | '—' | '_' => "-",
        '€' => "EUR",
        _ => return None,
    })
}

/// `text` in the SEPA character set, spaces collapsed, at most `max` characters; never empty
/// (SEPA text fields have at least one character).
pub fn sepa_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfd() {
        if allowed(c) {
            out.push(c);
        } else if let Some(r) = replacement(c) {
            out.push_str(r);
        } else if !is_combining_mark(c) {
            out.push(' ');
        }
    }
    let mut collapsed: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.truncate(max); // ASCII only: bytes are characters
    let trimmed = collapsed.trim_end();
    if trimmed.is_empty() { ".".to_owned() } else { trimmed.to_owned() }
}

/// An amount as ISO 20022 writes it: a dot and two decimals, no sign for positive amounts.
pub fn amount_text(amount: Cents) -> String {
    amount.to_decimal().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_are_transliterated_and_others_replaced() {
        assert_eq!(sepa_text("Théâtre de l’Œuvre & Cie", 70), "Theatre de l'OEuvre + Cie");
        assert_eq!(
            sepa_text("Association Sportive Saint-Étienne-du-Rouvray", 70),
            "Association Sportive Saint-Etienne-du-Rouvray"
        );
        assert_eq!(sepa_text("Straße  Ñandú <b>", 70), "Strasse Nandu b");
        assert_eq!(sepa_text("Ça coûte 5 € ; ok", 70), "Ca coute 5 EUR ok");
        assert_eq!(sepa_text("京都", 70), ".");
    }

    #[test]
    fn text_is_cut_to_the_field_length() {
        let long = "é".repeat(200);
        assert_eq!(sepa_text(&long, 70).len(), 70);
        assert_eq!(sepa_text("abc def", 4), "abc");
    }

    #[test]
    fn every_output_character_is_in_the_sepa_set() {
        let s = sepa_text("Ærøskøbing Ğüşı Ŵ ž ! # $ % * ; < = > @ [ ] ^ { | } ~ ½", 140);
        assert!(s.chars().all(allowed), "{s}");
    }

    #[test]
    fn amounts_have_two_decimals_and_a_dot() {
        assert_eq!(amount_text(Cents(123456)), "1234.56");
        assert_eq!(amount_text(Cents(5)), "0.05");
        assert_eq!(amount_text(Cents(100)), "1.00");
    }
}
