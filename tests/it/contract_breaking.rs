//! No breaking change against the last released schema (`mobile-contract/released/`, the
//! newest version): apps in the stores keep working. Breaking: a type, field, argument, enum
//! value or input field removed; a type changed (an output field may become non-null); a new
//! required argument or input field. A deliberate break needs a new major contract version:
//! add the new released file and say so in the CHANGELOG.

use std::collections::BTreeMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

const RELEASED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-contract/released");

/// Every promise a schema makes, by path: `Type.field` → type, `Type.field(arg)` → type and
/// whether it is required, `Enum.VALUE`, `Input.field` → type and whether it is required.
#[derive(Debug, Default)]
struct Surface {
    types: BTreeMap<String, &'static str>,
    outputs: BTreeMap<String, String>,
    inputs: BTreeMap<String, (String, bool)>,
    values: BTreeMap<String, ()>,
}

fn surface(sdl: &str) -> Surface {
    let doc = parse_schema(sdl).expect("a valid SDL");
    let mut s = Surface::default();
    let required = |ty: &async_graphql::parser::types::Type, default: bool| !ty.nullable && !default;
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else { continue };
        let t = t.node;
        let name = t.name.node.to_string();
        let (kind, fields, inputs) = match &t.kind {
            TypeKind::Scalar => ("scalar", vec![], vec![]),
            TypeKind::Object(o) => ("object", o.fields.clone(), vec![]),
            TypeKind::Interface(i) => ("interface", i.fields.clone(), vec![]),
            TypeKind::Union(_) => ("union", vec![], vec![]),
            TypeKind::Enum(e) => {
                for v in &e.values {
                    s.values.insert(format!("{name}.{}", v.node.value.node), ());
                }
                ("enum", vec![], vec![])
            }
            TypeKind::InputObject(i) => ("input", vec![], i.fields.clone()),
        };
        s.types.insert(name.clone(), kind);
        for f in fields {
            let f = f.node;
            let path = format!("{name}.{}", f.name.node);
            for a in f.arguments {
                let a = a.node;
                let req = required(&a.ty.node, a.default_value.is_some());
                s.inputs.insert(format!("{path}({})", a.name.node), (a.ty.node.to_string(), req));
            }
            s.outputs.insert(path, f.ty.node.to_string());
        }
        for i in inputs {
            let i = i.node;
            let req = required(&i.ty.node, i.default_value.is_some());
            s.inputs.insert(format!("{name}.{}", i.name.node), (i.ty.node.to_string(), req));
        }
    }
    s
}

/// What `now` breaks of `released`.
fn breaks(released: &Surface, now: &Surface) -> Vec<String> {
    let mut out = vec![];
    for (t, kind) in &released.types {
        if now.types.get(t) != Some(kind) {
            out.push(format!("type {t} removed or changed kind"));
        }
    }
    for (path, ty) in &released.outputs {
        match now.outputs.get(path) {
            None => out.push(format!("{path} removed")),
            // Nullable → non-null is safe for an output; any other change is not.
            Some(new) if new != ty && format!("{ty}!") != *new => out.push(format!("{path}: {ty} → {new}")),
            _ => {}
        }
    }
    for (path, (ty, _)) in &released.inputs {
        match now.inputs.get(path) {
            None => out.push(format!("{path} removed")),
            Some((new, _)) if new != ty => out.push(format!("{path}: {ty} → {new}")),
            _ => {}
        }
    }
    for (path, (_, required)) in &now.inputs {
        let owner_existed = released.types.contains_key(path.split('.').next().unwrap_or(""))
            && (!path.contains('(') || released.outputs.contains_key(path.split('(').next().unwrap_or("")));
        if *required && owner_existed && !released.inputs.contains_key(path) {
            out.push(format!("{path}: new required input"));
        }
    }
    for v in released.values.keys() {
        if !now.values.contains_key(v) {
            out.push(format!("enum value {v} removed"));
        }
    }
    out
}

fn last_released() -> (String, String) {
    let mut files: Vec<_> = std::fs::read_dir(RELEASED).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| {
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        stem.split('.').map(|n| n.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>()
    });
    let last = files.pop().expect("a released schema");
    (last.display().to_string(), std::fs::read_to_string(&last).unwrap())
}

#[test]
fn the_schema_keeps_every_promise_of_the_last_release() {
    let (file, released) = last_released();
    let found = breaks(&surface(&released), &surface(&passerelle_graphql::export_sdl()));
    assert!(found.is_empty(), "breaking changes against {file}: {found:#?}");
}

#[test]
fn the_check_sees_removals_type_changes_and_new_required_inputs() {
    let before = surface("type Query { a: Int b(x: Int): String c: String } enum E { X Y } input I { f: Int }");
    let after = surface(
        "type Query { a: String b(x: Int, y: Int!): String c: String! } enum E { X } input I { f: Int g: Int! }",
    );
    let found = breaks(&before, &after);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found.iter().any(|b| b.contains("Query.a")), "{found:#?}");
    assert!(found.iter().any(|b| b.contains("Query.b(y)")), "{found:#?}");
    assert!(found.iter().any(|b| b.contains("E.Y")), "{found:#?}");
    assert!(found.iter().any(|b| b.contains("I.g")), "{found:#?}");
}
