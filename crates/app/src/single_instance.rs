//! One BurnCloud per address: a second launch asks the running one to show its window and exits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// If `listen` is taken by a BurnCloud that accepts `admin_key`, asks it to show its window.
/// Returns true when it did, so this launch can end.
pub fn hand_over_to_running(listen: SocketAddr, admin_key: &str) -> bool {
    if std::net::TcpListener::bind(listen).is_ok() {
        return false;
    }
    let request = format!(
        "POST /console/internal/show HTTP/1.1\r\nHost: {listen}\r\nAuthorization: Bearer {admin_key}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let answer = (|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&listen, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    })();
    answer.is_ok_and(|answer| answer.starts_with("HTTP/1.1 202"))
}
