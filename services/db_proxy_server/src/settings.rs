//! `dbproxyserver.conf`: the original's keys (storage-file.md §1.2, base-login-route.md §5.4).

use tt_common::{Conf, ConfError};

/// One MySQL pool of `DBInstances` (`<pool>_host`, `_port`, `_dbname`, `_username`,
/// `_password`, `_maxconncnt`).
#[derive(Clone, Debug)]
pub struct DbPool {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub username: String,
    pub password: String,
    pub max_conn: u32,
}

/// One Redis pool of `CacheInstances` (`<cache>_host`, `_port`, `_db`, `_maxconncnt`).
#[derive(Clone, Debug)]
pub struct CachePool {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub db: u32,
    pub max_conn: u32,
}

/// Everything db_proxy_server reads from its conf file.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen_ips: Vec<String>,
    pub listen_port: u16,
    pub thread_num: usize,
    /// `StoreBatchMax`: most messages a worker stores in one transaction.
    pub store_batch_max: usize,
    pub msfs_site: String,
    pub aes_key: Vec<u8>,
    pub master: DbPool,
    pub slave: DbPool,
    pub caches: Vec<CachePool>,
}

/// The MySQL pool names the code uses (both must be listed in `DBInstances`).
pub const MASTER: &str = "teamtalk_master";
pub const SLAVE: &str = "teamtalk_slave";
/// The Redis pool names the code uses (`sync` is configured by the original but unused).
pub const CACHE_UNREAD: &str = "unread";
pub const CACHE_GROUP_SET: &str = "group_set";
pub const CACHE_TOKEN: &str = "token";
pub const CACHE_GROUP_MEMBER: &str = "group_member";

/// Default and upper bound of `StoreBatchMax`.
pub const STORE_BATCH_DEFAULT: usize = 256;
pub const STORE_BATCH_LIMIT: usize = 4096;

/// Upper bound of `ThreadNum` (each worker holds its own MySQL and Redis connections).
pub const MAX_THREADS: usize = 256;

impl Settings {
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        let listen_ips = conf.require_list("ListenIP", ';')?;
        let listen_port: u16 = conf.require_parse("ListenPort")?;
        let thread_num: usize = conf.require_parse("ThreadNum")?;
        if thread_num == 0 || thread_num > MAX_THREADS {
            return Err(conf.invalid(
                "ThreadNum",
                &thread_num.to_string(),
                &format!("a number of worker threads from 1 to {MAX_THREADS}"),
            ));
        }
        let store_batch_max: usize = conf.get_parse("StoreBatchMax", STORE_BATCH_DEFAULT)?;
        if store_batch_max == 0 || store_batch_max > STORE_BATCH_LIMIT {
            return Err(conf.invalid(
                "StoreBatchMax",
                &store_batch_max.to_string(),
                &format!("a number of messages from 1 to {STORE_BATCH_LIMIT}"),
            ));
        }
        let msfs_site = conf.require("MsfsSite")?.to_string();
        let aes_key = conf.require("aesKey")?;
        if aes_key.len() != 32 {
            return Err(conf.invalid("aesKey", aes_key, "exactly 32 bytes"));
        }
        let aes_key = aes_key.as_bytes().to_vec();

        let db_names = conf.require_list("DBInstances", ',')?;
        let mut master = None;
        let mut slave = None;
        for name in &db_names {
            let pool = DbPool {
                name: name.clone(),
                host: conf.require(&format!("{name}_host"))?.to_string(),
                port: conf.require_parse(&format!("{name}_port"))?,
                dbname: conf.require(&format!("{name}_dbname"))?.to_string(),
                username: conf.require(&format!("{name}_username"))?.to_string(),
                password: conf.require(&format!("{name}_password"))?.to_string(),
                max_conn: conf.require_parse(&format!("{name}_maxconncnt"))?,
            };
            match name.as_str() {
                MASTER => master = Some(pool),
                SLAVE => slave = Some(pool),
                _ => log::warn!("DBInstances: pool {name} is not used by db_proxy_server"),
            }
        }
        let listed = db_names.join(",");
        let master = master.ok_or_else(|| {
            conf.invalid(
                "DBInstances",
                &listed,
                &format!("a list containing {MASTER}"),
            )
        })?;
        let slave = slave.ok_or_else(|| {
            conf.invalid(
                "DBInstances",
                &listed,
                &format!("a list containing {SLAVE}"),
            )
        })?;

        let cache_names = conf.require_list("CacheInstances", ',')?;
        let mut caches = Vec::with_capacity(cache_names.len());
        for name in &cache_names {
            caches.push(CachePool {
                name: name.clone(),
                host: conf.require(&format!("{name}_host"))?.to_string(),
                port: conf.require_parse(&format!("{name}_port"))?,
                db: conf.require_parse(&format!("{name}_db"))?,
                max_conn: conf.require_parse(&format!("{name}_maxconncnt"))?,
            });
        }
        for needed in [
            CACHE_UNREAD,
            CACHE_GROUP_SET,
            CACHE_TOKEN,
            CACHE_GROUP_MEMBER,
        ] {
            if !caches.iter().any(|c| c.name == needed) {
                return Err(conf.invalid(
                    "CacheInstances",
                    &cache_names.join(","),
                    &format!("a list containing {needed}"),
                ));
            }
        }
        Ok(Settings {
            listen_ips,
            listen_port,
            thread_num,
            store_batch_max,
            msfs_site,
            aes_key,
            master,
            slave,
            caches,
        })
    }
}
