//! SQL models on a real PostgreSQL (weft-testsvc): a table model that views
//! depend on is rebuilt in place while its columns stay the same, and
//! dropped with its dependents (then the model views created again) when
//! they change.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use weft_warehouse::{Materialized, Model, Warehouse};

fn model(name: &str, materialized: Materialized, sql: &str) -> Model {
    Model {
        name: name.into(),
        sql: sql.into(),
        materialized,
    }
}

#[tokio::test]
async fn a_table_model_with_views_on_it_is_rebuilt_every_run() {
    let pg = tokio::task::spawn_blocking(weft_testsvc::Postgres::start)
        .await
        .unwrap()
        .expect("a PostgreSQL >= 15 server (apt-get install -y postgresql)");
    let url = pg.create_database("models").unwrap();
    let wh = weft_warehouse::PostgresWarehouse::connect(&url, None)
        .await
        .unwrap();
    pg.psql(
        "models",
        "CREATE TABLE public.src (email text, n int); \
         INSERT INTO public.src VALUES ('a@x.com', 1), ('b@x.com', 2), ('c@x.com', 3);",
    )
    .unwrap();
    let people = |sql: &str| model("models.people", Materialized::Table, sql);
    let big = model(
        "models.big",
        Materialized::View,
        "-- materialized: view\nSELECT email FROM models.people WHERE n >= 2",
    );
    let first = "-- materialized: table\nWITH s AS (SELECT email, n FROM public.src)\nSELECT email, n FROM s ORDER BY email;";
    let runs = wh.run_models(&[people(first), big.clone()]).await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| (r.name.as_str(), r.rows))
            .collect::<Vec<_>>(),
        [("models.people", 3), ("models.big", 2)]
    );
    // A user's own view on the model table.
    pg.psql(
        "models",
        "CREATE VIEW public.mine AS SELECT count(*) AS n FROM models.people",
    )
    .unwrap();
    pg.psql("models", "INSERT INTO public.src VALUES ('d@x.com', 4)")
        .unwrap();
    // Same columns: rebuilt in place; both views keep working.
    let runs = wh.run_models(&[people(first), big.clone()]).await.unwrap();
    assert_eq!(runs[0].rows, 4);
    assert_eq!(runs[1].rows, 3);
    assert_eq!(pg.psql("models", "SELECT n FROM public.mine").unwrap(), "4");

    // New columns: the table is created again, its dependents dropped and
    // the model view created again after it.
    let wider = "-- materialized: table\nSELECT email, n, n * 10 AS tens FROM public.src";
    let runs = wh.run_models(&[people(wider), big]).await.unwrap();
    assert_eq!((runs[0].rows, runs[1].rows), (4, 3));
    assert_eq!(
        pg.psql("models", "SELECT sum(tens) FROM models.people")
            .unwrap(),
        "100"
    );
    assert_eq!(
        pg.psql(
            "models",
            "SELECT count(*) FROM pg_views WHERE schemaname = 'public' AND viewname = 'mine'",
        )
        .unwrap(),
        "0",
        "the user's view went with the old table"
    );
}
