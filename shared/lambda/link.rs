//! The build script every Lambda function package shares (`build = "../../shared/lambda/link.rs"`
//! in its manifest; the benchmark's hello-world uses it too, to be built like them).
//!
//! On Linux with glibc the binary is linked as a position-dependent executable (`-no-pie`):
//! the addresses in its tables of pointers (vtables, static strings, the route table) are
//! fixed by the linker instead of by the dynamic loader at every start. A PIE of ours carries
//! 20,000–26,000 relative relocations; applying them was ~0.3 M instructions and ~90
//! copy-on-write page faults of every cold start (`docs/benchmarks.md`, "Cold start"). The
//! cost is that the executable's own image loses address randomisation (shared libraries,
//! stack and heap keep theirs), as Go's Lambda binaries have by default; packed relative
//! relocations (`-z pack-relative-relocs`) would keep it, but need glibc 2.36 and Lambda's
//! `provided.al2023` has 2.34. Only binaries are affected: a `cdylib` in the dependency graph
//! still links as a shared object.
fn main() {
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
