//! buildah (Debian's 1.28) as the oracle: builds a Dockerfile in a store of its own under the
//! test's temp dir, the way `../shared/conformance/buildah-conformance/run.py` runs it, and
//! pushes the result to an OCI layout.

use std::path::{Path, PathBuf};

use super::{Run, tool};

/// A buildah store that lives as long as the test.
pub struct Buildah {
    dir: PathBuf,
}

impl Buildah {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Buildah {
            dir: dir.to_path_buf(),
        }
    }

    fn global(&self) -> Vec<String> {
        vec![
            "--root".into(),
            self.dir.join("root").display().to_string(),
            "--runroot".into(),
            self.dir.join("runroot").display().to_string(),
            "--storage-driver".into(),
            "overlay".into(),
        ]
    }

    /// `buildah bud` of `dockerfile` in `context` with `args`, pushed to `out` as `latest`.
    pub fn build(
        &self,
        dockerfile: &Path,
        context: &Path,
        args: &[(&str, &str)],
        extra: &[&str],
        out: &Path,
    ) -> Run {
        let tag = format!(
            "localhost/kiln-oracle-{}",
            out.file_name().unwrap().to_string_lossy()
        );
        let mut argv = self.global();
        for word in [
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "--no-cache",
            "--force-rm",
            "--tls-verify=false",
            "--format",
            "oci",
            "-f",
        ] {
            argv.push(word.into());
        }
        argv.push(dockerfile.display().to_string());
        argv.push("-t".into());
        argv.push(tag.clone());
        for (k, v) in args {
            argv.push("--build-arg".into());
            argv.push(format!("{k}={v}"));
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv.push(context.display().to_string());
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut built = tool("buildah", &refs);
        // buildah 1.28's chroot isolation sometimes fails to seal the memfd copy of its own
        // binary ("Close_Fd sealing memfd copy: Device or resource busy") when processes run
        // beside it: the oracle failing, not the build. It is tried again, twice at most.
        for _ in 0..2 {
            let transient = [&built.stdout, &built.stderr]
                .iter()
                .any(|out| out.contains("sealing memfd copy"));
            if built.code == 0 || !transient {
                break;
            }
            #[allow(clippy::print_stderr)] // the test log says why a build ran twice
            {
                eprintln!("buildah: transient memfd sealing failure, building again");
            }
            built = tool("buildah", &refs);
        }
        if built.code != 0 {
            return built;
        }
        let mut push = self.global();
        push.extend([
            "push".to_owned(),
            tag,
            format!("oci:{}:latest", out.display()),
        ]);
        let refs: Vec<&str> = push.iter().map(String::as_str).collect();
        tool("buildah", &refs)
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let mut rmi = self.global();
        rmi.extend(["rmi".to_owned(), "--all".to_owned(), "--force".to_owned()]);
        let refs: Vec<&str> = rmi.iter().map(String::as_str).collect();
        let _ = std::process::Command::new("buildah").args(&refs).output();
        // The overlay driver keeps its home mounted; let go of it before the dir goes.
        let _ = std::process::Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("root/overlay"))
            .output();
    }
}
