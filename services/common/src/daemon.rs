//! Process plumbing every daemon shares: logging, `-v`, the conf path, the pid file, listeners.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use netlib::{EventLoop, Handler, ListenerId, Net, Signal};

use crate::links::resolve;

/// Logs to stderr through `env_logger`: level `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run with this conf file.
    Run { conf: PathBuf },
    /// `-v` or `--version`: print [`version_text`] and exit (done by [`parse_args`]).
    Version,
}

/// What `-v` prints, in the original's format: `Server Version: <Name>/<version>` then a
/// build line.
pub fn version_text(server_name: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!("Server Version: {server_name}/{version}\nServer Build: teamtalk-rs {version}\n")
}

/// The original reads `<default_conf>` from the working directory and takes only `-v`. Also
/// accepted here: `--version`, and `-c FILE` / `--conf FILE` for another conf file.
pub fn parse_args(server_name: &str, default_conf: &str) -> Result<Command, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = parse_args_from(&args, server_name, default_conf)?;
    if command == Command::Version {
        print!("{}", version_text(server_name));
    }
    Ok(command)
}

/// [`parse_args`] on a given argument list (without the program name), printing nothing.
pub fn parse_args_from(
    args: &[String],
    server_name: &str,
    default_conf: &str,
) -> Result<Command, String> {
    match args {
        [] => Ok(Command::Run {
            conf: PathBuf::from(default_conf),
        }),
        [v] if v == "-v" || v == "--version" => Ok(Command::Version),
        [flag, file] if flag == "-c" || flag == "--conf" => Ok(Command::Run {
            conf: PathBuf::from(file),
        }),
        _ => Err(format!(
            "usage: {server_name} [-v | --version | -c CONF_FILE]  (default conf: ./{default_conf})"
        )),
    }
}

/// Writes the process id to `server.pid` in the working directory, as the original does.
pub fn write_pid_file() -> std::io::Result<()> {
    let mut f = std::fs::File::create("server.pid")?;
    write!(f, "{}", std::process::id())
}

/// Listens on `port` at every address of a `;`-separated conf list (one listener each).
pub fn listen_all(net: &mut Net, ips: &[String], port: u16) -> Result<Vec<ListenerId>, String> {
    let mut out = Vec::with_capacity(ips.len());
    for ip in ips {
        let addr: SocketAddr =
            resolve(ip, port).ok_or_else(|| format!("cannot resolve listen address {ip}"))?;
        let id = net
            .listen(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        log::info!("listening on {addr}");
        out.push(id);
    }
    Ok(out)
}

/// Tells whoever started the daemon that its listeners are up: one line on stderr, whatever
/// the log level (the integration tests wait for it).
pub fn announce_ready(server_name: &str) {
    eprintln!("{server_name}: server ready (pid {})", std::process::id());
}

/// Runs a daemon's event loop to its end: SIGTERM, SIGINT and SIGHUP become loop events
/// (`Handler::on_signal`), `server.pid` is written, the readiness line printed; when the loop
/// returns (the end of a stop, see [`crate::stop`]) `server.pid` is removed. A stop that hit
/// its bound or was cut short by a second signal is an error (a non-zero exit status). The
/// `MetricsPort` listener, when the conf has one, is opened first and handed to the handler.
pub fn serve<H: Handler + crate::metrics::Observed>(
    server_name: &str,
    ev: &mut EventLoop<H::Msg>,
    handler: &mut H,
) -> Result<(), String> {
    ev.watch_signals(&[Signal::Terminate, Signal::Interrupt, Signal::Hangup])
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    *handler.endpoint() =
        crate::metrics::Endpoint::open(ev.net(), crate::metrics::configured_addr())?;
    write_pid_file().map_err(|e| format!("cannot write server.pid: {e}"))?;
    announce_ready(server_name);
    let result = ev
        .run(handler)
        .map_err(|e| format!("event loop failed: {e}"));
    let _ = std::fs::remove_file("server.pid");
    log::info!("{server_name} stopped");
    match crate::stop::take_failure() {
        Some(reason) if result.is_ok() => Err(format!("stop incomplete: {reason}")),
        _ => result,
    }
}

/// The whole `main` of a daemon: arguments (`-v`, `-c FILE`), logging, then `run` with the conf
/// path. An error from `run` (a conf key, a listen address…) is logged and printed, and the
/// process exits with status 1; `-v` exits 0.
///
/// `version_name` is what `-v` prints (`MsgServer`), `conf_name` the default conf file
/// (`msgserver.conf`), `bin_name` the prefix of the error line (`msg_server`).
pub fn run_main(
    version_name: &str,
    conf_name: &str,
    bin_name: &str,
    run: impl FnOnce(&std::path::Path) -> Result<(), String>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let conf = match parse_args(version_name, conf_name) {
        Ok(Command::Run { conf }) => conf,
        Ok(Command::Version) => return ExitCode::SUCCESS,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(1);
        }
    };
    init_logging();
    // The stop bound and the metrics address are every daemon's: read here, once. A conf
    // that does not load is reported by `run`.
    if let Ok(c) = crate::Conf::load(&conf) {
        let ops =
            crate::stop::stop_timeout(&c).and_then(|t| Ok((t, crate::metrics::metrics_addr(&c)?)));
        match ops {
            Ok((t, metrics)) => {
                crate::stop::set_stop_timeout(t);
                crate::metrics::set_metrics_addr(metrics);
            }
            Err(e) => {
                log::error!("{e}");
                eprintln!("{bin_name}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    match run(&conf) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("{bin_name}: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn both_version_flags_ask_for_the_version() {
        for flag in ["-v", "--version"] {
            assert_eq!(
                parse_args_from(&args(&[flag]), "MsgServer", "msgserver.conf"),
                Ok(Command::Version)
            );
        }
    }

    #[test]
    fn conf_flags_and_default_conf() {
        assert_eq!(
            parse_args_from(&[], "MsgServer", "msgserver.conf"),
            Ok(Command::Run {
                conf: PathBuf::from("msgserver.conf")
            })
        );
        for flag in ["-c", "--conf"] {
            assert_eq!(
                parse_args_from(&args(&[flag, "/etc/x.conf"]), "MsgServer", "msgserver.conf"),
                Ok(Command::Run {
                    conf: PathBuf::from("/etc/x.conf")
                })
            );
        }
        for bad in [&["-x"][..], &["-v", "-v"], &["-c"]] {
            let usage = parse_args_from(&args(bad), "MsgServer", "msgserver.conf").unwrap_err();
            assert!(usage.contains("--version"), "{usage}");
        }
    }

    #[test]
    fn version_text_has_the_original_format() {
        let text = version_text("LoginServer");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[0],
            format!("Server Version: LoginServer/{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(lines[1].starts_with("Server Build: "), "{text}");
    }
}
