//! Build script: generates the protobuf <-> JSON schema table from the sources of `k8s-pb`
//! (wire schema, mirrors upstream's `generated.proto` files), `k8s-openapi` (JSON names) and
//! `data/go_fields.txt` (which Go fields are pointers or `omitempty`, for zero values).

#[path = "build/generate.rs"]
mod generate;
#[path = "build/locate.rs"]
mod locate;
#[path = "build/openapi.rs"]
mod openapi;
#[path = "build/pb.rs"]
mod pb;

use std::path::PathBuf;

/// The k8s-openapi version module matching the `v1_37` feature used by the workspace.
const OPENAPI_VERSION_DIR: &str = "v1_37";

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-env-changed=APISERVER_PROTOBUF_DEBUG");
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env("OUT_DIR")?);

    let pb_root = locate::crate_root(
        &locate::Wanted {
            name: "k8s-pb",
            version_prefix: "0.9.",
            env_override: "APISERVER_PROTOBUF_K8S_PB_SRC",
        },
        &manifest_dir,
    )?;
    let oa_root = locate::crate_root(
        &locate::Wanted {
            name: "k8s-openapi",
            version_prefix: "0.29.",
            env_override: "APISERVER_PROTOBUF_K8S_OPENAPI_SRC",
        },
        &manifest_dir,
    )?;

    let pb = pb::parse_crate(&pb_root)?;
    let oa = openapi::parse_crate(&oa_root, OPENAPI_VERSION_DIR)?;
    let go_fields_path = manifest_dir.join("data").join("go_fields.txt");
    println!("cargo:rerun-if-changed={}", go_fields_path.display());
    let go_fields = std::fs::read_to_string(&go_fields_path)
        .map_err(|e| format!("{}: {e}", go_fields_path.display()))?;
    let go_fields = generate::parse_go_fields(&go_fields)?;
    let mut report = generate::Report::default();
    let table = generate::generate(&pb, &oa, &go_fields, &mut report)?;
    if std::env::var_os("APISERVER_PROTOBUF_DEBUG").is_some() {
        let dump = format!(
            "unmatched messages ({}):\n{}\n\nguessed field names ({}):\n{}\n\ninlined ({}):\n{}\n\nscalars without Go facts ({}):\n{}\n",
            report.unmatched_messages.len(),
            report.unmatched_messages.join("\n"),
            report.guessed_fields.len(),
            report.guessed_fields.join("\n"),
            report.inlined.len(),
            report.inlined.join("\n"),
            report.no_go_facts.len(),
            report.no_go_facts.join("\n")
        );
        std::fs::write(out_dir.join("schema_report.txt"), dump).map_err(|e| e.to_string())?;
        println!(
            "cargo:warning=schema report: {}",
            out_dir.join("schema_report.txt").display()
        );
    }
    std::fs::write(out_dir.join("schema_table.rs"), table).map_err(|e| e.to_string())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}
