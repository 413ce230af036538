//! Whether this host can run a platform's binaries: natively, or through an emulator the
//! kernel's binfmt_misc hands foreign ELF files to (QEMU user mode, as Debian's
//! `qemu-user-static` registers it). Checked before a RUN for another platform starts, so a
//! missing emulator is one clear error naming the platform and the fix rather than the
//! container's "exec format error".
//!
//! A handler is matched by what it claims — the ELF machine (and word size and byte order
//! where its mask covers them) in its magic — not by its name, so any emulator registered
//! for the architecture counts. It must carry the `F` flag (the interpreter opened at
//! registration), because the step's root filesystem is the image's, which holds no
//! emulator.

use std::path::Path;

use kiln_llb::Platform;

/// Where the kernel lists binfmt_misc handlers.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Why a platform cannot run here; the message says how to make it run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{platform} cannot run on this {host} host: {reason}")]
pub struct EmulationError {
    /// The platform the RUN is for.
    pub platform: String,
    /// This host's platform.
    pub host: String,
    /// What is missing, and how to add it.
    pub reason: String,
}

/// The ELF identity of an architecture: machine number, 64-bit, little-endian.
fn elf_of(architecture: &str) -> Option<(u16, bool, bool)> {
    Some(match architecture {
        "amd64" => (62, true, true),
        "386" => (3, false, true),
        "arm64" => (183, true, true),
        "arm" => (40, false, true),
        "riscv64" => (243, true, true),
        "ppc64le" => (21, true, true),
        "ppc64" => (21, true, false),
        "s390x" => (22, true, false),
        "mips64le" => (8, true, true),
        "mips64" => (8, true, false),
        "mipsle" => (8, false, true),
        "mips" => (8, false, false),
        "loong64" => (258, true, true),
        _ => return None,
    })
}

/// Whether `host` runs `target`'s binaries without an emulator (the same architecture, or
/// the 32-bit one its CPU also runs).
fn native(host: &Platform, target: &Platform) -> bool {
    target.architecture == host.architecture
        || matches!(
            (host.architecture.as_str(), target.architecture.as_str()),
            ("amd64", "386")
        )
}

/// Checks that this host can run `target`'s binaries (natively, or through a binfmt_misc
/// handler in `binfmt_dir`).
pub fn check(target: &Platform, host: &Platform, binfmt_dir: &Path) -> Result<(), EmulationError> {
    if target.os != host.os {
        return Err(EmulationError {
            platform: target.to_string(),
            host: host.to_string(),
            reason: format!("kiln runs {} binaries only", host.os),
        });
    }
    if native(host, target) {
        return Ok(());
    }
    let err = |reason: String| EmulationError {
        platform: target.to_string(),
        host: host.to_string(),
        reason,
    };
    let install = "install an emulator (Debian: `apt-get install qemu-user-static \
                   binfmt-support`, which registers QEMU for every architecture with the F flag)";
    let Some((machine, wide, little)) = elf_of(&target.architecture) else {
        return Err(err(format!(
            "kiln knows no ELF machine for architecture {:?}, so it cannot find an emulator",
            target.architecture
        )));
    };
    if !binfmt_dir.join("status").exists() {
        return Err(err(format!(
            "binfmt_misc is not mounted at {} (mount -t binfmt_misc binfmt_misc {}), \
             and RUN for another architecture needs an emulator registered there: {install}",
            binfmt_dir.display(),
            binfmt_dir.display()
        )));
    }
    let mut without_f = None;
    for entry in std::fs::read_dir(binfmt_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "status" || name == "register" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Some(handler) = Handler::parse(&text) else {
            continue;
        };
        if !handler.claims(machine, wide, little) {
            continue;
        }
        if handler.fix_binary {
            return Ok(());
        }
        without_f = Some((name, handler.interpreter));
    }
    Err(err(match without_f {
        Some((name, interpreter)) => format!(
            "the binfmt_misc handler {name} ({interpreter}) is registered without the F flag, \
             so the kernel would look for {interpreter} inside the image: register it again \
             with F (Debian's qemu-user-static does)"
        ),
        None => format!(
            "no emulator for {} is registered with binfmt_misc ({}): {install}",
            target.architecture,
            binfmt_dir.display()
        ),
    }))
}

/// One enabled binfmt_misc handler, as its file under `binfmt_misc/` shows it.
#[derive(Debug)]
struct Handler {
    interpreter: String,
    fix_binary: bool,
    magic: Vec<u8>,
    mask: Vec<u8>,
}

impl Handler {
    /// An enabled magic-number handler at offset 0; `None` for anything else.
    fn parse(text: &str) -> Option<Handler> {
        let mut lines = text.lines();
        if lines.next()? != "enabled" {
            return None;
        }
        let (mut interpreter, mut flags, mut magic, mut mask) = (None, "", None, None);
        let mut offset = 0;
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "interpreter" => interpreter = Some(value.to_owned()),
                "flags:" => flags = value,
                "offset" => offset = value.trim().parse().ok()?,
                "magic" => magic = hex(value.trim()),
                "mask" => mask = hex(value.trim()),
                _ => {}
            }
        }
        if offset != 0 {
            return None;
        }
        let magic = magic?;
        let mask = mask.unwrap_or_else(|| vec![0xff; magic.len()]);
        Some(Handler {
            interpreter: interpreter?,
            fix_binary: flags.contains('F'),
            magic,
            mask,
        })
    }

    /// Whether an ELF file of this machine, word size and byte order matches the magic.
    fn claims(&self, machine: u16, wide: bool, little: bool) -> bool {
        let mut header = [0u8; 20];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = if wide { 2 } else { 1 };
        header[5] = if little { 1 } else { 2 };
        header[6] = 1;
        // ET_EXEC (handlers mask the type to take ET_DYN too), then the machine.
        let (kind, m) = if little {
            (2u16.to_le_bytes(), machine.to_le_bytes())
        } else {
            (2u16.to_be_bytes(), machine.to_be_bytes())
        };
        header[16..18].copy_from_slice(&kind);
        header[18..20].copy_from_slice(&m);
        if self.magic.len() < 20 {
            return false;
        }
        self.magic
            .iter()
            .zip(&self.mask)
            .zip(header)
            .all(|((want, mask), have)| have & mask == want & mask)
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;

    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n\
        flags: PF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n\
        mask ffffffffffffff00fffffffffffffffffeffffff\n";
    const S390X: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\n\
        flags: PF\noffset 0\nmagic 7f454c4602020100000000000000000000020016\n\
        mask fffffffffffffffcfffffffffffffffffffeffff\n";

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    fn binfmt(entries: &[(&str, &str)]) -> TestDir {
        let dir = TestDir::new("binfmt");
        std::fs::write(dir.path().join("status"), "enabled\n").unwrap();
        std::fs::write(dir.path().join("register"), "").unwrap();
        for (name, text) in entries {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn native_platforms_need_nothing() {
        let none = Path::new("/nonexistent");
        check(&p("linux/amd64"), &p("linux/amd64"), none).unwrap();
        check(&p("linux/386"), &p("linux/amd64"), none).unwrap();
    }

    #[test]
    fn a_registered_handler_is_found_by_what_it_claims() {
        let dir = binfmt(&[("qemu-aarch64", AARCH64), ("qemu-s390x", S390X)]);
        check(&p("linux/arm64"), &p("linux/amd64"), dir.path()).unwrap();
        check(&p("linux/s390x"), &p("linux/amd64"), dir.path()).unwrap();
        // Named anything: only the magic counts.
        let other = binfmt(&[("my-arm64-emulator", AARCH64)]);
        check(&p("linux/arm64"), &p("linux/amd64"), other.path()).unwrap();
    }

    #[test]
    fn missing_disabled_or_unfixed_handlers_say_how_to_fix_it() {
        let dir = binfmt(&[("qemu-s390x", S390X)]);
        let e = check(&p("linux/arm64"), &p("linux/amd64"), dir.path()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("linux/arm64 cannot run on this linux/amd64 host"),
            "{msg}"
        );
        assert!(
            msg.contains("no emulator for arm64") && msg.contains("qemu-user-static"),
            "{msg}"
        );
        let disabled = binfmt(&[("qemu-aarch64", &AARCH64.replacen("enabled", "disabled", 1))]);
        assert!(check(&p("linux/arm64"), &p("linux/amd64"), disabled.path()).is_err());
        let unfixed = binfmt(&[("qemu-aarch64", &AARCH64.replace("flags: PF", "flags: P"))]);
        let msg = check(&p("linux/arm64"), &p("linux/amd64"), unfixed.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("without the F flag"), "{msg}");
        // 32-bit arm is another machine than aarch64.
        let dir = binfmt(&[("qemu-aarch64", AARCH64)]);
        assert!(check(&p("linux/arm/v7"), &p("linux/amd64"), dir.path()).is_err());
        let unmounted = TestDir::new("binfmt-unmounted");
        let msg = check(&p("linux/arm64"), &p("linux/amd64"), unmounted.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("binfmt_misc is not mounted"), "{msg}");
        let msg = check(&p("windows/amd64"), &p("linux/amd64"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("linux binaries only"), "{msg}");
    }
}
