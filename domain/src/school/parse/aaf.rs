//! AAF ("ficAlimMENESR") files: the académie's annuaire export that ENTs consume.
//!
//! Grammar (fixtures/ent/ficAlimMENESR.dtd): a `ficAlimMENESR` root holding `addRequest`,
//! `modifyRequest` and `deleteRequest` elements, each with `operationalAttributes` (the category),
//! `identifier/id` (the jointure id) and either `attributes/attr@name/value*` or
//! `modifications/modification@name@operation/value*`. Attributes are multi-valued and
//! `<value/>` means "empty".
//!
//! We keep `Eleve`, `PersRelEleve` and `EtabEducNat`; other categories (`PersEducNat`,
//! `MefEducNat`, …) are skipped and counted in
//! [`ParseStats::ignored`](super::records::ParseStats::ignored). Unlike entcore, which
//! only acts on `addRequest`, modify and delete requests are turned into records too, because
//! delta files carry them (ent-formats.md §1.1).

use std::io::BufRead;

use super::mapping::{finish_guardian, finish_pupil, set_guardian_attr, set_pupil_attr, set_structure_attr};
use super::position::Pos;
use super::records::{Category, FieldIssue, Guardian, Pupil, Record, Structure};
use super::xml::{Cx, Handler, XmlParser};

/// Streams the records of one AAF file. See [`XmlParser`] for the iteration contract.
pub fn parse_aaf<R: BufRead>(reader: R, file_name: &str) -> XmlParser<R> {
    XmlParser::new(reader, file_name, Box::new(AafHandler::default()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Modify,
    Delete,
}

/// One request being read: small, so memory stays bounded by the largest request.
struct Request {
    op: Op,
    pos: Pos,
    category: Option<String>,
    id: Option<String>,
    /// Attribute or modification name, values, and where it started.
    attrs: Vec<(String, Vec<String>, Pos)>,
}

/// The `attr` or `modification` being read.
struct OpenAttr {
    name: String,
    pos: Pos,
    values: Vec<String>,
    /// `operation` other than `replace` (not in the DTD).
    unsupported: Option<String>,
}

#[derive(Default)]
pub(crate) struct AafHandler {
    req: Option<Request>,
    attr: Option<OpenAttr>,
}

fn attr_value<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Handler for AafHandler {
    fn start(&mut self, cx: &mut Cx<'_>, name: &str, attrs: &[(String, String)]) -> Result<(), String> {
        match (cx.depth, name) {
            (1, "ficAlimMENESR") => cx.stats.format = Some("AAF"),
            (1, _) => {
                return Err(format!("not an AAF file: the root element is <{name}>, expected <ficAlimMENESR>"));
            }
            (2, "addRequest" | "modifyRequest" | "deleteRequest") => {
                let op = match name {
                    "addRequest" => Op::Add,
                    "modifyRequest" => Op::Modify,
                    _ => Op::Delete,
                };
                self.req = Some(Request { op, pos: cx.pos, category: None, id: None, attrs: Vec::new() });
            }
            (4, "attr" | "modification") if self.req.is_some() => {
                let operation = attr_value(attrs, "operation").unwrap_or("replace");
                self.attr = Some(OpenAttr {
                    name: attr_value(attrs, "name").unwrap_or_default().to_owned(),
                    pos: cx.pos,
                    values: Vec::new(),
                    unsupported: (name == "modification" && operation != "replace").then(|| operation.to_owned()),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, cx: &mut Cx<'_>, name: &str, text: &str) -> Result<(), String> {
        match (cx.depth, name) {
            (5, "value") => {
                if let Some(a) = &mut self.attr {
                    let v = text.trim();
                    if !v.is_empty() {
                        a.values.push(v.to_owned());
                    }
                }
            }
            (4, "id") => {
                if let Some(r) = &mut self.req {
                    r.id = Some(text.trim().to_owned()).filter(|s| !s.is_empty());
                }
            }
            (4, "attr" | "modification") => {
                if let (Some(a), Some(r)) = (self.attr.take(), &mut self.req) {
                    if cx.parent == "operationalAttributes" {
                        if a.name.starts_with("categorie") {
                            r.category = a.values.into_iter().next();
                        }
                    } else if let Some(op) = a.unsupported {
                        let msg =
                            format!("modification of {} with operation {op:?} ignored (only replace exists)", a.name);
                        cx.warn(a.pos, r.id.as_deref(), "UNSUPPORTED_OPERATION", msg);
                    } else {
                        r.attrs.push((a.name, a.values, a.pos));
                    }
                }
            }
            (2, "addRequest" | "modifyRequest" | "deleteRequest") => {
                if let Some(req) = self.req.take() {
                    finish_request(cx, req);
                }
            }
            (2, other) => cx.stats.ignore(other),
            _ => {}
        }
        Ok(())
    }
}

fn finish_request(cx: &mut Cx<'_>, req: Request) {
    let Some(raw_category) = req.category.as_deref() else {
        cx.warn(
            req.pos,
            req.id.as_deref(),
            "MISSING_CATEGORY",
            "request without categoriePersonne/categorieStructure ignored",
        );
        cx.stats.ignore("(no category)");
        return;
    };
    // An unknown category is a record kind this import skips (counted in the stats), not an error.
    let Ok(category) = raw_category.trim().parse::<Category>() else {
        cx.stats.ignore(raw_category);
        return;
    };
    let key = req.id.clone().or_else(|| jointure_attr(&req.attrs));
    let Some(key) = key else {
        cx.warn(req.pos, None, "MISSING_ID", format!("{category} request without identifier ignored"));
        cx.stats.ignore("(no id)");
        return;
    };
    match req.op {
        Op::Delete => cx.record(Record::Delete { category, key }),
        Op::Add => {
            let record = build(cx, category, &key, &req.attrs, Some(req.pos));
            cx.record(record);
        }
        Op::Modify => {
            // Validate the values now (dates, UAI…) so warnings carry the file position; the
            // importer applies the patch to the stored record with `apply_*_patch`.
            let _ = build(cx, category, &key, &req.attrs, None);
            let patch = req.attrs.into_iter().map(|(n, v, _)| (n, v)).collect();
            cx.record(Record::Modify { category, key, patch });
        }
    }
}

/// The key from the attributes when `identifier/id` is missing.
fn jointure_attr(attrs: &[(String, Vec<String>, Pos)]) -> Option<String> {
    attrs
        .iter()
        .find(|(n, _, _)| n == "ENTPersonJointure" || n == "ENTStructureJointure")
        .and_then(|(_, v, _)| v.first().cloned())
}

/// Builds a record by applying every attribute to an empty one, reporting issues where each
/// attribute started. `new_at` is the request position for a new record (whole-record checks
/// run), `None` for a patch.
fn build(
    cx: &mut Cx<'_>,
    category: Category,
    key: &str,
    attrs: &[(String, Vec<String>, Pos)],
    new_at: Option<Pos>,
) -> Record {
    let mut issues: Vec<FieldIssue> = Vec::new();
    match category {
        Category::Eleve => {
            let mut p = Pupil { key: key.to_owned(), ..Pupil::default() };
            for (name, values, at) in attrs {
                set_pupil_attr(&mut p, name, values, &mut issues);
                cx.issues(*at, key, std::mem::take(&mut issues));
            }
            if let Some(pos) = new_at {
                finish_pupil(&mut p, &mut issues);
                cx.issues(pos, key, issues);
            }
            Record::Pupil(p)
        }
        Category::PersRelEleve => {
            let mut g = Guardian { key: key.to_owned(), ..Guardian::default() };
            for (name, values, at) in attrs {
                set_guardian_attr(&mut g, name, values, &mut issues);
                cx.issues(*at, key, std::mem::take(&mut issues));
            }
            if let Some(pos) = new_at {
                finish_guardian(&mut g, &mut issues);
                cx.issues(pos, key, issues);
            }
            Record::Guardian(g)
        }
        Category::EtabEducNat => {
            let mut s = Structure { key: key.to_owned(), ..Structure::default() };
            for (name, values, at) in attrs {
                set_structure_attr(&mut s, name, values, &mut issues);
                cx.issues(*at, key, std::mem::take(&mut issues));
            }
            Record::Structure(s)
        }
    }
}
