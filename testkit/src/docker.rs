//! A Docker daemon for tests: connect, or skip (fail under CI), and the local test image
//! `stead-test/busybox:1`, built from the host's static busybox (Debian's busybox-static)
//! and imported through the Engine API (`docker import`), never pulled from a registry.

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

/// The image the docker tests run.
pub const TEST_IMAGE: &str = "stead-test/busybox:1";
pub const ENDPOINT: &str = "unix:///var/run/docker.sock";
/// The busybox applets the tests' containers use, as links in `/bin`.
const APPLETS: &[&str] =
    &["sh", "sleep", "echo", "cat", "httpd", "ls", "ps", "true", "false", "nc", "wget", "touch", "test", "["];

/// Whether this runs under CI (`CI=true`), where a missing prerequisite is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the test (returns `None`) because `what` is missing; under CI, fails it.
pub fn skip<T>(what: &str) -> Option<T> {
    assert!(!in_ci(), "CI=true but {what}: the test needs it");
    eprintln!("skipping: {what}");
    None
}

/// A daemon that answers, with [`TEST_IMAGE`] present (imported if it was not), or `None`
/// when there is none (see [`skip`]).
pub async fn docker_or_skip() -> Option<Docker> {
    let docker = match Docker::connect_with_host(ENDPOINT) {
        Ok(d) => d,
        Err(e) => return skip(&format!("no Docker daemon at {ENDPOINT}: {e}")),
    };
    match tokio::time::timeout(Duration::from_secs(5), docker.version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return skip(&format!("no Docker daemon at {ENDPOINT}: {e}")),
        Err(_) => return skip(&format!("no Docker daemon at {ENDPOINT}: no answer within 5s")),
    }
    if docker.inspect_image(TEST_IMAGE).await.is_ok() {
        return Some(docker);
    }
    let Ok(busybox) = std::fs::read("/bin/busybox") else {
        return skip("no /bin/busybox to build the test image from (apt-get install busybox-static)");
    };
    import_busybox(&docker, &busybox).await;
    Some(docker)
}

/// Imports a root file system of just busybox and its applet links as [`TEST_IMAGE`]
/// (`docker import`: the body is the tar of the root). Two tests importing at once both
/// succeed: the second import only re-tags.
async fn import_busybox(docker: &Docker, busybox: &[u8]) {
    let mut tar = tar::Builder::new(Vec::new());
    for (dir, mode) in [("bin/", 0o755), ("tmp/", 0o1777), ("etc/", 0o755)] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        tar.append_data(&mut h, dir, std::io::empty()).expect("an in-memory tar");
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    tar.append_data(&mut h, "bin/busybox", busybox).expect("an in-memory tar");
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox").expect("an in-memory tar");
    }
    let body = bytes::Bytes::from(tar.into_inner().expect("an in-memory tar"));
    let (repo, tag) = TEST_IMAGE.split_once(':').unwrap_or((TEST_IMAGE, "latest"));
    let options = CreateImageOptionsBuilder::new().from_src("-").repo(repo).tag(tag).build();
    let mut progress = docker.create_image(Some(options), Some(bollard::body_full(body)), None);
    while let Some(item) = progress.next().await {
        item.expect("importing the busybox image");
    }
}
