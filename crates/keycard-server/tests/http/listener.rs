//! The plain-TCP listener's shutdown: a request in flight is answered, new connections are not
//! accepted, and the stop waits for the answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ACCOUNT, Harness};

#[tokio::test]
async fn stopping_finishes_the_request_in_flight_and_accepts_no_more() {
    let mut h = Harness::start().await;
    let url = h.url("/services/rest/record/v1/customer");
    let auth = h.authorization("POST", &url, None, Some(ACCOUNT));
    let server = h.server.take().unwrap();
    let addr = server.addr;
    let body = br#"{"companyName":"Acme","email":"a@example.com"}"#;
    let (first, rest) = body.split_at(10);

    // Half of the body is sent before the stop, the rest after it.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /services/rest/record/v1/customer HTTP/1.1\r\nhost: localhost:{}\r\n\
         authorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        addr.port(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(server.stop());

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "the stop must wait for the request in flight"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a stopping server accepts no new connection"
    );

    stream.write_all(rest).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("the connection closes after the answer")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the stop ends once the answer is written")
        .unwrap()
        .unwrap();

    let records = h.audit().await;
    assert_eq!(
        records
            .iter()
            .map(|r| (r.request_uri.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        [("/services/rest/record/v1/customer", "Success")]
    );
}
