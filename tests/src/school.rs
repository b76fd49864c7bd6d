//! School-data fixtures for tests that need pupils without going through a file import.

use passerelle_domain::db::{now_us_sql, stmt};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use uuid::Uuid;

/// Creates a funder directly (tests of campaigns and grants).
pub async fn funder(db: &DatabaseConnection, code: &str) -> Uuid {
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO funder (id, code, name, departement, created_at_us) VALUES ($1, $2, $3, $4, {})",
        now_us_sql(db.get_database_backend())
    );
    let values: [Value; 4] = [id.into(), code.into(), format!("Département {code}").into(), code.into()];
    db.execute_raw(stmt(db.get_database_backend(), &sql, values)).await.expect("insert funder");
    id
}

/// A pupil as the roster would give it.
pub struct PupilSeed<'a> {
    pub key: &'a str,
    pub grade: &'a str,
    pub uai: &'a str,
    pub boursier: bool,
}

/// Inserts pupils in chunks; returns their ids in order.
pub async fn insert_pupils(db: &DatabaseConnection, funder_id: Uuid, pupils: &[PupilSeed<'_>]) -> Vec<Uuid> {
    let backend = db.get_database_backend();
    let now = now_us_sql(backend);
    let mut ids = vec![];
    for chunk in pupils.chunks(200) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 7;
                format!(
                    "(${}, ${}, ${}, 'Family', 'Given', ${}, ${}, ${}, ${}, 'fp', {now}, {now})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO pupil (id, funder_id, source_key, family_name, given_name, uai, school_key, grade, boursier, \
             fingerprint, created_at_us, updated_at_us) VALUES {}",
            tuples.join(", ")
        );
        let mut values: Vec<Value> = vec![];
        for p in chunk {
            let id = Uuid::now_v7();
            ids.push(id);
            values.extend([
                id.into(),
                funder_id.into(),
                p.key.into(),
                p.uai.into(),
                format!("uai:{}", p.uai).into(),
                p.grade.into(),
                p.boursier.into(),
            ]);
        }
        db.execute_raw(stmt(backend, &sql, values)).await.expect("insert pupils");
    }
    ids
}
