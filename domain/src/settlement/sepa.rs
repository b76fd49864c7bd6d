//! The SEPA credit transfer file (ISO 20022 `pain.001.001.03`, EPC implementation rules) the
//! funder's treasury sends to its bank as is.
//!
//! Written with quick-xml's writer (escaping is its job, not ours). The EPC rules the schema
//! does not check are applied here: EUR only, service level `SEPA`, charges shared (`SLEV`),
//! the Latin character set, names cut to 70 characters and remittance text to 140, ids of at
//! most 35 characters unique per file, and control sums equal to the sum of the amounts.
//! Only a few ids and names vary; the structure is fixed, so the schema test in
//! `tests/it/settlement.rs` covers every branch (with and without a creditor BIC).

use chrono::{NaiveDate, NaiveDateTime};
use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::text::{amount_text, sepa_text};
use crate::error::{Error, Result};
use crate::ids::{Bic, Iban};
use crate::money::Cents;

const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03";
/// EPC: names are kept to 70 characters, unstructured remittance to 140, ids to 35.
const NAME_MAX: usize = 70;
const REMITTANCE_MAX: usize = 140;
const ID_MAX: usize = 35;

/// The paying account: the funder's treasury.
#[derive(Clone, Debug)]
pub struct Debtor {
    pub name: String,
    pub iban: Iban,
    pub bic: Bic,
}

/// One transfer to a partner.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub end_to_end_id: String,
    pub amount: Cents,
    pub creditor_name: String,
    pub iban: Iban,
    pub bic: Option<Bic>,
    pub remittance: String,
}

/// A whole file: one payment information block (one debit, one execution date).
#[derive(Clone, Debug)]
pub struct CreditTransferFile {
    pub message_id: String,
    /// Local time of Paris, as the treasury reads it.
    pub created_at: NaiveDateTime,
    pub initiating_party: String,
    pub debtor: Debtor,
    pub execution_date: NaiveDate,
    pub transfers: Vec<Transfer>,
}

fn id(value: &str) -> Result<String> {
    let ok = !value.is_empty() && value.len() <= ID_MAX && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Error::internal(sea_orm::DbErr::Custom(format!("bad SEPA id {value:?}"))))
    }
}

struct Xml(Writer<Vec<u8>>);

impl Xml {
    fn open(&mut self, name: &str) -> std::io::Result<()> {
        self.0.write_event(Event::Start(BytesStart::new(name)))
    }

    fn close(&mut self, name: &str) -> std::io::Result<()> {
        self.0.write_event(Event::End(BytesEnd::new(name)))
    }

    /// Text escaped for `<`, `>` and `&` only: an apostrophe, common in French names, stays
    /// as is rather than `&apos;`, which some bank converters mishandle.
    fn leaf(&mut self, name: &str, text: &str) -> std::io::Result<()> {
        self.0.create_element(name).write_text_content(BytesText::from_escaped(partial_escape(text)))?;
        Ok(())
    }

    fn amount(&mut self, amount: Cents) -> std::io::Result<()> {
        let text = amount_text(amount);
        self.0.create_element("InstdAmt").with_attribute(("Ccy", "EUR")).write_text_content(BytesText::new(&text))?;
        Ok(())
    }

    /// `<Wrapper><Id><IBAN>…</IBAN></Id></Wrapper>`
    fn account(&mut self, wrapper: &str, iban: &Iban) -> std::io::Result<()> {
        self.open(wrapper)?;
        self.open("Id")?;
        self.leaf("IBAN", iban.as_str())?;
        self.close("Id")?;
        self.close(wrapper)
    }

    /// `<Wrapper><FinInstnId><BIC>…</BIC></FinInstnId></Wrapper>`
    fn agent(&mut self, wrapper: &str, bic: &Bic) -> std::io::Result<()> {
        self.open(wrapper)?;
        self.open("FinInstnId")?;
        self.leaf("BIC", bic.as_str())?;
        self.close("FinInstnId")?;
        self.close(wrapper)
    }

    fn party(&mut self, wrapper: &str, name: &str) -> std::io::Result<()> {
        self.open(wrapper)?;
        self.leaf("Nm", &sepa_text(name, NAME_MAX))?;
        self.close(wrapper)
    }
}

/// The file's XML (UTF-8). `BAD_USER_INPUT` when there is nothing to pay or an amount is not
/// positive: SEPA has no empty or negative transfer.
pub fn credit_transfer_xml(file: &CreditTransferFile) -> Result<String> {
    if file.transfers.is_empty() {
        return Err(Error::bad_input("transfers", "at least one transfer"));
    }
    let mut total = Cents::ZERO;
    let mut ids = std::collections::HashSet::new();
    for t in &file.transfers {
        if !ids.insert(id(&t.end_to_end_id)?) {
            return Err(Error::bad_input("endToEndId", "unique within a file"));
        }
        if t.amount.0 <= 0 {
            return Err(Error::bad_input("amount", "transfers are positive"));
        }
        total = total.checked_add(t.amount).ok_or_else(|| Error::bad_input("amount", "the total overflows"))?;
    }
    let message_id = id(&file.message_id)?;
    let mut xml = Xml(Writer::new_with_indent(Vec::new(), b' ', 2));
    write(&mut xml, file, &message_id, total).map_err(Error::internal)?;
    String::from_utf8(xml.0.into_inner()).map_err(Error::internal)
}

fn write(x: &mut Xml, file: &CreditTransferFile, message_id: &str, total: Cents) -> std::io::Result<()> {
    let count = file.transfers.len().to_string();
    x.0.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    x.0.write_event(Event::Start(BytesStart::new("Document").with_attributes([("xmlns", NAMESPACE)])))?;
    x.open("CstmrCdtTrfInitn")?;
    x.open("GrpHdr")?;
    x.leaf("MsgId", message_id)?;
    x.leaf("CreDtTm", &file.created_at.format("%Y-%m-%dT%H:%M:%S").to_string())?;
    x.leaf("NbOfTxs", &count)?;
    x.leaf("CtrlSum", &amount_text(total))?;
    x.party("InitgPty", &file.initiating_party)?;
    x.close("GrpHdr")?;

    x.open("PmtInf")?;
    // One block per file: its id is the message's, marked (unique within the file).
    x.leaf("PmtInfId", &format!("{}-1", &message_id[..message_id.len().min(ID_MAX - 2)]))?;
    x.leaf("PmtMtd", "TRF")?;
    x.leaf("NbOfTxs", &count)?;
    x.leaf("CtrlSum", &amount_text(total))?;
    x.open("PmtTpInf")?;
    x.open("SvcLvl")?;
    x.leaf("Cd", "SEPA")?;
    x.close("SvcLvl")?;
    x.close("PmtTpInf")?;
    x.leaf("ReqdExctnDt", &file.execution_date.format("%Y-%m-%d").to_string())?;
    x.party("Dbtr", &file.debtor.name)?;
    x.account("DbtrAcct", &file.debtor.iban)?;
    x.agent("DbtrAgt", &file.debtor.bic)?;
    x.leaf("ChrgBr", "SLEV")?;
    for t in &file.transfers {
        x.open("CdtTrfTxInf")?;
        x.open("PmtId")?;
        x.leaf("EndToEndId", &t.end_to_end_id)?;
        x.close("PmtId")?;
        x.open("Amt")?;
        x.amount(t.amount)?;
        x.close("Amt")?;
        if let Some(bic) = &t.bic {
            x.agent("CdtrAgt", bic)?;
        }
        x.party("Cdtr", &t.creditor_name)?;
        x.account("CdtrAcct", &t.iban)?;
        x.open("RmtInf")?;
        x.leaf("Ustrd", &sepa_text(&t.remittance, REMITTANCE_MAX))?;
        x.close("RmtInf")?;
        x.close("CdtTrfTxInf")?;
    }
    x.close("PmtInf")?;
    x.close("CstmrCdtTrfInitn")?;
    x.close("Document")
}
