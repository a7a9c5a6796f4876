//! `ssm-inventory ENDPOINT ACCOUNT_ID EXTERNAL_ID REGION...`: what one account holds in SSM,
//! region by region, read through the real SDK (AssumeRole into the account first). The
//! demo uses it to show what the controller made.

use std::process::ExitCode;

use patchfleet_tests::inspect;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, account_id, external_id, regions @ ..] = args.as_slice() else {
        eprintln!("usage: ssm-inventory ENDPOINT ACCOUNT_ID EXTERNAL_ID REGION...");
        return ExitCode::FAILURE;
    };
    for region in regions {
        match inspect::inventory_text(endpoint, account_id, external_id, region).await {
            Ok(text) => print!("{text}"),
            Err(error) => {
                eprintln!("ssm-inventory: {account_id} {region}: {error:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
