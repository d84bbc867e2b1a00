//! The bodies of the `/msg_server` HTTP replies (§3.4), laid out as jsoncpp's `StyledWriter`
//! writes them (`tt_http::styled_json`). Requests are framed and replies written by `tt_http`.

use serde_json::json;
use tt_http::styled_json::styled;

/// The `Content-Type` of every `/msg_server` reply.
pub const CONTENT_TYPE: &str = "text/html;charset=utf-8";

/// The body for "no msg_server registered" (code 1).
pub fn no_msg_server_body() -> String {
    styled(&json!({ "code": 1, "msg": "没有msg_server" }))
}

/// The body for "every msg_server is full" (code 2).
pub fn all_full_body() -> String {
    styled(&json!({ "code": 2, "msg": "负载过高" }))
}

/// The success body (code 0). `port` is a string, as in the original.
pub fn ok_body(prior_ip: &str, backup_ip: &str, port: u16, msfs: &str, discovery: &str) -> String {
    styled(&json!({
        "backupIP": backup_ip,
        "code": 0,
        "discovery": discovery,
        "msfsBackup": msfs,
        "msfsPrior": msfs,
        "msg": "",
        "port": port.to_string(),
        "priorIP": prior_ip,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_original_sizes_and_layout() {
        assert_eq!(no_msg_server_body().len(), 49);
        assert_eq!(all_full_body().len(), 45);
        assert_eq!(
            no_msg_server_body(),
            "{\n   \"code\" : 1,\n   \"msg\" : \"没有msg_server\"\n}\n"
        );
        let ok = ok_body(
            "127.0.0.1",
            "127.0.0.1",
            8000,
            "http://127.0.0.1:8700/",
            "http://127.0.0.1/api/discovery",
        );
        assert_eq!(
            ok,
            "{\n   \"backupIP\" : \"127.0.0.1\",\n   \"code\" : 0,\n   \"discovery\" : \
             \"http://127.0.0.1/api/discovery\",\n   \"msfsBackup\" : \"http://127.0.0.1:8700/\",\n   \
             \"msfsPrior\" : \"http://127.0.0.1:8700/\",\n   \"msg\" : \"\",\n   \"port\" : \"8000\",\n   \
             \"priorIP\" : \"127.0.0.1\"\n}\n"
        );
    }

    #[test]
    fn whole_reply_has_the_original_bytes() {
        let body = all_full_body();
        let reply = tt_http::Response::ok(CONTENT_TYPE, body.clone()).to_bytes(false, true);
        assert_eq!(
            reply,
            format!(
                "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:45\r\n\
                 Content-Type:text/html;charset=utf-8\r\n\r\n{body}"
            )
            .into_bytes()
        );
    }
}
