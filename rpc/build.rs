//! Generates the gRPC code of `proto/stead/v1/*.proto` (madsim-tonic-build writes both
//! the real tonic code and the simulator's; `tonic::include_proto!` picks one by cfg).
//! Needs `protoc` (Debian's protobuf-compiler; scripts/test.sh installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_build::configure()
        .compile_protos(&["proto/stead/v1/client.proto", "proto/stead/v1/jobs.proto"], &["proto"])?;
    Ok(())
}
