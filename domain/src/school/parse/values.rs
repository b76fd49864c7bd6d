//! Scalar values as school exports write them: French dates, and booleans in every spelling
//! (SIECLE mixes `0/1` and `true/false` inside one record, AAF uses `O/N`).

use chrono::NaiveDate;

/// `dd/mm/yyyy` (AAF, SIECLE, CSV); the CSV also accepts ISO `yyyy-mm-dd`, which spreadsheets
/// produce when someone re-saves the file. `None` for anything else or an impossible date.
pub(crate) fn parse_date(raw: &str) -> Option<NaiveDate> {
    let s = raw.trim();
    let (d, m, y) = if let Some((d, rest)) = s.split_once('/') {
        let (m, y) = rest.split_once('/')?;
        (d, m, y)
    } else {
        let (y, rest) = s.split_once('-')?;
        let (m, d) = rest.split_once('-')?;
        (d, m, y)
    };
    let num = |x: &str, max_len: usize| -> Option<u32> {
        (!x.is_empty() && x.len() <= max_len && x.bytes().all(|b| b.is_ascii_digit())).then(|| x.parse().ok()).flatten()
    };
    if y.len() != 4 {
        return None;
    }
    let year = i32::try_from(num(y, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(m, 2)?, num(d, 2)?)
}

/// Booleans: `1/0`, `true/false`, `O/N` (oui/non), `oui/non`, `yes/no`, any case.
pub(crate) fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "o" | "oui" | "y" | "yes" => Some(true),
        "0" | "false" | "n" | "non" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(parse_date("14/09/1995"), d(1995, 9, 14));
        assert_eq!(parse_date(" 4/7/2012 "), d(2012, 7, 4));
        assert_eq!(parse_date("2012-07-04"), d(2012, 7, 4));
        assert_eq!(parse_date("31/12/9999"), d(9999, 12, 31));
        for bad in ["", "31/02/2012", "14/09/95", "14-09-1995", "aa/bb/cccc", "1/1/+201", "14/09/1995/1"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn flags() {
        for t in ["1", "true", "O", "oui", "TRUE"] {
            assert_eq!(parse_flag(t), Some(true), "{t}");
        }
        for f in ["0", "false", "N", "non", " n "] {
            assert_eq!(parse_flag(f), Some(false), "{f}");
        }
        assert_eq!(parse_flag("2"), None);
        assert_eq!(parse_flag(""), None);
    }
}
