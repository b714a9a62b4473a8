//! Each environment's MariaDB as root sees it (over its socket), to check
//! what the database phase created or left.

use crate::stack::repo;
use std::process::Command;

/// How many of the tenant's MySQL database and user exist on `env`'s MariaDB (as root, through its socket): `["0", "0"]` when both are gone.
pub fn tenant_mysql_objects(env: &str, tenant: &str) -> Vec<String> {
    mariadb_words(
        env,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{tenant}_db'; SELECT COUNT(*) FROM mysql.user WHERE User='{tenant}_user'"
        ),
    )
}

/// What `query` prints on `env`'s MariaDB (as root, over its socket), word by word.
pub fn mariadb_words(env: &str, query: &str) -> Vec<String> {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-u", "root", "--socket"])
        .arg(repo().join(format!("local/.state/mariadb/{env}/mysqld.sock")))
        .args(["-N", "-e", query])
        .output()
        .expect("mariadb client");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The databases whose names start with `{tenant}_` in `env`'s MariaDB.
pub fn tenant_databases(env: &str, tenant: &str) -> Vec<String> {
    mariadb_words(
        env,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{tenant}\\_%' ORDER BY 1"
        ),
    )
}
