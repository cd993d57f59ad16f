//! Starts the real servers and checks they do what the crate promises.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use weft_testsvc::{Error, Postgres, SeaweedS3};

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

#[test]
fn postgres_starts_answers_and_stops() -> Result<(), Error> {
    let started = Instant::now();
    let pg = Postgres::start()?;
    eprintln!("postgres ready in {:?}", started.elapsed());

    let port = pg.port();
    assert!(accepts(port));
    assert_eq!(pg.url(), format!("postgres://weft@127.0.0.1:{port}/weft"));
    assert_eq!(pg.psql("weft", "SELECT 1+1")?, "2");
    let version: u32 = pg
        .psql("weft", "SHOW server_version_num")?
        .parse()
        .map_err(|e| Error::InvalidArgument(format!("server_version_num: {e}")))?;
    assert!(version >= 150_000, "server_version_num {version}");
    assert_eq!(pg.psql("weft", "SELECT current_user")?, "weft");
    assert_eq!(
        pg.psql(
            "weft",
            "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'weft'"
        )?,
        "UTF8"
    );
    assert_eq!(pg.psql("weft", "SHOW fsync")?, "off");

    // A second, independent database on the same server.
    let url = pg.create_database("second_db")?;
    assert_eq!(url, format!("postgres://weft@127.0.0.1:{port}/second_db"));
    assert_eq!(
        pg.psql(
            "second_db",
            "CREATE TABLE t (x int, y text); INSERT INTO t VALUES (1, 'a'), (2, 'b');"
        )?,
        ""
    );
    assert_eq!(
        pg.psql("second_db", "SELECT x, y FROM t ORDER BY x")?,
        "1|a\n2|b"
    );
    assert_eq!(
        pg.psql("second_db", "SELECT current_database()")?,
        "second_db"
    );
    assert_eq!(
        pg.psql(
            "weft",
            "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
        )?,
        "0",
        "the table lives only in second_db"
    );

    // Failures carry what went wrong.
    match pg.create_database("second_db") {
        Err(Error::CommandFailed { stderr, .. }) => {
            assert!(stderr.contains("already exists"), "{stderr}")
        }
        other => panic!("duplicate database: {other:?}"),
    }
    assert!(matches!(
        pg.create_database("bad-name; DROP"),
        Err(Error::InvalidArgument(_))
    ));
    match pg.psql("weft", "SELECT * FROM no_such_table") {
        Err(Error::CommandFailed { stderr, .. }) => {
            assert!(stderr.contains("no_such_table"), "{stderr}")
        }
        other => panic!("bad SQL: {other:?}"),
    }

    let stopping = Instant::now();
    drop(pg);
    eprintln!("postgres stopped in {:?}", stopping.elapsed());
    assert!(!accepts(port), "port {port} still accepts after drop");
    Ok(())
}

#[test]
fn two_postgres_servers_run_side_by_side() -> Result<(), Error> {
    let other = std::thread::spawn(Postgres::start);
    let a = Postgres::start()?;
    let b = other
        .join()
        .map_err(|_| Error::InvalidArgument("start thread panicked".into()))??;
    assert_ne!(a.port(), b.port());
    a.psql("weft", "CREATE TABLE only_in_a (x int)")?;
    assert_eq!(
        b.psql(
            "weft",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        )?,
        "0"
    );
    assert_eq!(b.psql("weft", "SELECT 40+2")?, "42");
    Ok(())
}

fn s3_store(s3: &SeaweedS3, secret: &str) -> object_store::Result<impl ObjectStore> {
    AmazonS3Builder::new()
        .with_endpoint(s3.endpoint())
        .with_bucket_name(s3.bucket())
        .with_access_key_id(s3.access_key_id())
        .with_secret_access_key(secret)
        .with_region(s3.region())
        .with_allow_http(true)
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })
        .build()
}

#[tokio::test]
async fn seaweed_s3_round_trip() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let s3 = tokio::task::spawn_blocking(SeaweedS3::start).await??;
    eprintln!("weed mini ready in {:?}", started.elapsed());

    let port = s3.port();
    assert_eq!(s3.endpoint(), format!("http://127.0.0.1:{port}"));
    assert_eq!(s3.bucket(), "weft-test");
    assert_eq!(s3.url(), "s3://weft-test");
    assert_eq!(s3.region(), "us-east-1");
    assert_eq!(s3.access_key_id().len(), 20);
    assert_eq!(s3.secret_access_key().len(), 40);

    let store = s3_store(&s3, s3.secret_access_key())?;
    let path = ObjectPath::from("stage/run-1/part-0.txt");
    let body = b"hello from weft\n".repeat(1000);
    store.put(&path, PutPayload::from(body.clone())).await?;

    let got = store.get(&path).await?.bytes().await?;
    assert_eq!(got.as_ref(), body.as_slice());

    let listed = store
        .list_with_delimiter(Some(&ObjectPath::from("stage/run-1")))
        .await?;
    let names: Vec<String> = listed
        .objects
        .iter()
        .map(|m| m.location.to_string())
        .collect();
    assert_eq!(names, vec!["stage/run-1/part-0.txt".to_owned()]);
    assert_eq!(listed.objects[0].size, body.len() as u64);
    let top = store.list_with_delimiter(None).await?;
    assert_eq!(
        top.common_prefixes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec!["stage".to_owned()]
    );

    store.delete(&path).await?;
    assert!(matches!(
        store.get(&path).await,
        Err(object_store::Error::NotFound { .. })
    ));

    // The server checks signatures: a wrong secret is refused.
    let wrong = s3_store(&s3, "not-the-secret-0123456789abcdefghijklmn")?;
    let refused = wrong
        .put(
            &ObjectPath::from("intruder.txt"),
            PutPayload::from_static(b"x"),
        )
        .await;
    assert!(refused.is_err(), "a wrong secret was accepted");
    eprintln!(
        "wrong secret: {}",
        refused.err().map(|e| e.to_string()).unwrap_or_default()
    );
    assert!(
        wrong
            .get(&ObjectPath::from("stage/run-1/part-0.txt"))
            .await
            .is_err()
    );
    assert!(
        store.list_with_delimiter(None).await?.objects.is_empty(),
        "nothing was written with the wrong secret"
    );

    let stopping = Instant::now();
    tokio::task::spawn_blocking(move || drop(s3)).await?;
    eprintln!("weed mini stopped in {:?}", stopping.elapsed());
    assert!(!accepts(port), "port {port} still accepts after drop");
    Ok(())
}

#[test]
fn two_seaweed_servers_run_side_by_side() -> Result<(), Error> {
    let other = std::thread::spawn(SeaweedS3::start);
    let a = SeaweedS3::start()?;
    let b = other
        .join()
        .map_err(|_| Error::InvalidArgument("start thread panicked".into()))??;
    assert_ne!(a.endpoint(), b.endpoint());
    assert_ne!(a.access_key_id(), b.access_key_id());
    assert_ne!(a.secret_access_key(), b.secret_access_key());
    assert!(accepts(a.port()) && accepts(b.port()));
    Ok(())
}
