//! Calls `/rest/tokeninfo` and one REST record list with credentials from the environment:
//!
//! ```sh
//! KEYCARD_SERVER=http://localhost:8910 KEYCARD_REALM=1234567 \
//! KEYCARD_CONSUMER_KEY=… KEYCARD_CONSUMER_SECRET=… KEYCARD_TOKEN_ID=… KEYCARD_TOKEN_SECRET=… \
//!   cargo run -p keycard-client --example tokeninfo
//! ```

use keycard_client::{Call, Client, Credentials, Error, Realm};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name}"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let credentials = Credentials::new(var("KEYCARD_CONSUMER_KEY"), var("KEYCARD_CONSUMER_SECRET"))
        .with_token(var("KEYCARD_TOKEN_ID"), var("KEYCARD_TOKEN_SECRET"));
    let client = Client::builder(var("KEYCARD_SERVER"), credentials)
        .realm(Realm::from_account(&var("KEYCARD_REALM")))
        .on_retry(|n| eprintln!("busy ({}), retrying in {:?}", n.error, n.delay))
        .build()?;
    let info = client.token_info().await?;
    println!(
        "token of {} with role {}",
        info["entityEmail"], info["roleName"]
    );
    match client
        .send(&Call::get("/services/rest/record/v1/customer").query("limit", "1"))
        .await
    {
        Ok(answer) => println!("{:#}", answer.json()?),
        // NetSuite's code and the request id to quote to the account owner.
        Err(Error::Api(api)) => {
            eprintln!("refused: {:?} (request id {:?})", api.code, api.request_id);
        }
        Err(other) => return Err(other),
    }
    Ok(())
}
