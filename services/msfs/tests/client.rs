//! tt_client's msfs functions (behind `tt-cli upload` / `download`) against a real msfs.

mod common;

use std::time::Duration;

use common::{Msfs, tiny_jpeg, tiny_png};
use tt_client::{Error, msfs};

const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn upload_and_download_through_the_client_library() {
    let m = Msfs::start("msfs-client", "");
    let base = format!("http://127.0.0.1:{}/", m.port);
    let png = tiny_png([7, 8, 9]);
    let up = msfs::upload(&base, "avatar_64x64.png", &png, TIMEOUT).unwrap();
    assert!(up.path.starts_with("g0/000/000/") && up.path.ends_with("_64x64.png"));
    assert_eq!(up.url, format!("http://127.0.0.1:{}/{}", m.port, up.path));
    assert_eq!(msfs::download(&base, &up.path, TIMEOUT).unwrap(), png);
    assert_eq!(
        msfs::download("", &up.url, TIMEOUT).unwrap(),
        png,
        "by full URL"
    );

    let file = m.dir.path().join("photo.jpg");
    std::fs::write(&file, tiny_jpeg()).unwrap();
    let up = msfs::upload_file(&base, &file, TIMEOUT).unwrap();
    let out = m.dir.path().join("back.jpg");
    let n = msfs::download_to(&base, &up.url, &out, TIMEOUT).unwrap();
    assert_eq!(n, tiny_jpeg().len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), tiny_jpeg());

    // Refusals are errors naming what msfs said; a failed download leaves no file.
    let e = msfs::upload(&base, "noextension", b"x", TIMEOUT).unwrap_err();
    assert!(
        matches!(&e, Error::Protocol(t) if t.contains("error_code 10")),
        "{e}"
    );
    let gone = m.dir.path().join("gone.png");
    let e = msfs::download_to(&base, "g0/000/000/missing.png", &gone, TIMEOUT).unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    assert!(!gone.exists());
}
