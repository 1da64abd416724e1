//! Links the binary with `link/hot-text.ld`, which gathers the code that
//! `on`, `run` and `off` run at the start of the text: each command then
//! faults in a few pages of it instead of thirty-odd scattered ones
//! (`bench/hot-text.py` writes it; docs/performance.md has the figures).
//! GNU ld and lld both read it; it only places sections, so a function it
//! names that is gone or renamed costs nothing. A linker that reads no
//! such script (mold): build with `CHROOT_TOOL_PLAIN_LINK=1`.
fn main() {
    println!("cargo:rerun-if-changed=link/hot-text.ld");
    println!("cargo:rerun-if-env-changed=CHROOT_TOOL_PLAIN_LINK");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux && std::env::var_os("CHROOT_TOOL_PLAIN_LINK").is_none() {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/link/hot-text.ld");
    }
}
