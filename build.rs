//! Links the binary with `link/hot-text.ld`, which gathers the code that
//! `on`, `run` and `off` run at the start of the text: each command then
//! faults in a few pages of it instead of thirty-odd scattered ones
//! (`bench/hot-text.py` writes it; docs/performance.md has the figures).
//! GNU ld and lld both read it; it only places sections, so a function it
//! names that is gone or renamed costs nothing. A linker that reads no
//! such script (mold): build with `CHROOT_TOOL_PLAIN_LINK=1`. The path
//! goes to the linker as an argument of its own (`-Xlinker`): `-Wl,` would
//! split a checkout path with a comma in it.
fn main() {
    println!("cargo:rerun-if-changed=link/hot-text.ld");
    println!("cargo:rerun-if-env-changed=CHROOT_TOOL_PLAIN_LINK");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let plain = std::env::var("CHROOT_TOOL_PLAIN_LINK").is_ok_and(|v| !v.is_empty() && v != "0");
    if linux && !plain {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-Xlinker");
        println!("cargo:rustc-link-arg-bins=--script={dir}/link/hot-text.ld");
    }
}
