// `sqlx::migrate!` embeds the migrations when the crate compiles; without
// this a migration added alone would not be built in.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
