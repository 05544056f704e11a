//! Builds the kernel fast path's eBPF object (feature `fast-path`) from
//! `src/engine/fastpath/forward.bpf.c` with clang, into `OUT_DIR`. Without
//! a clang that targets BPF the crate still builds and the fast path
//! reports itself unavailable at run time; `MEDIARELAY_REQUIRE_BPF=1`
//! turns that into a build error (CI sets it).

use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/engine/fastpath/forward.bpf.c";

fn main() {
    println!("cargo:rustc-check-cfg=cfg(mediarelay_bpf)");
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=MEDIARELAY_BPF_CLANG");
    println!("cargo:rerun-if-env-changed=MEDIARELAY_REQUIRE_BPF");
    if std::env::var_os("CARGO_FEATURE_FAST_PATH").is_none() {
        return;
    }
    let required = std::env::var("MEDIARELAY_REQUIRE_BPF").is_ok_and(|v| v == "1");
    match build() {
        Ok(()) => println!("cargo:rustc-cfg=mediarelay_bpf"),
        Err(why) if required => panic!("the eBPF fast path could not be built: {why}"),
        Err(why) => println!(
            "cargo:warning=kernel fast path not built ({why}); install clang (Debian: clang-22) and libbpf-dev to build it"
        ),
    }
}

fn build() -> Result<(), String> {
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let object = out.join("forward.bpf.o");
    let candidates: Vec<String> = match std::env::var("MEDIARELAY_BPF_CLANG") {
        Ok(c) => vec![c],
        Err(_) => (17..=30)
            .rev()
            .map(|v| format!("clang-{v}"))
            .chain(["clang".to_string()])
            .collect(),
    };
    // The kernel's UAPI headers include <asm/types.h>, which Debian keeps
    // under the multiarch include directory.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        other => other,
    };
    let mut last = String::from("no clang found");
    for clang in candidates {
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I/usr/include/{multiarch}"))
            .args(["-c", SOURCE, "-o"])
            .arg(&object)
            .status();
        match status {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => last = format!("{clang} failed ({s})"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => last = format!("{clang}: {e}"),
        }
    }
    Err(last)
}
