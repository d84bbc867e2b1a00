//! The JSON side of the API: the original's request fields and conversions (jsoncpp's
//! `asUInt`/`asString` rules), its error codes and texts, and the answer bodies (jsoncpp's
//! `StyledWriter` layout, through `tt_http::styled_json`).

use serde_json::{Map, Value, json};
use tt_http::styled_json::styled;
use tt_proto::pb::base_define::{GroupInfo, GroupModifyType, GroupType, UserInfo};

/// The `Content-Type` of every answer, as the original's.
pub const CONTENT_TYPE: &str = "text/html;charset=utf-8";

/// The original's `error_code` values that it sends (spec §13.3), with their texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Success = 0,
    Param = 1,
    Unauthorized = 5,
    ServerException = 10,
    CreateFailed = 11,
    ChangeFailed = 12,
}

impl Code {
    /// The `error_msg` the original sends with the code.
    pub fn text(self) -> &'static str {
        match self {
            Code::Success => "成功",
            Code::Param => "参数错误",
            Code::Unauthorized => "未授权的接口",
            Code::ServerException => "服务器异常",
            Code::CreateFailed => "创建群失败",
            Code::ChangeFailed => "更改群成员失败",
        }
    }
}

/// `{error_code, error_msg}` and `extra` members, styled.
pub fn body(code: Code, extra: Map<String, Value>) -> String {
    let mut root = extra;
    root.insert("error_code".into(), json!(code as u32));
    root.insert("error_msg".into(), json!(code.text()));
    styled(&Value::Object(root))
}

/// `{error_code, error_msg}` alone.
pub fn code_body(code: Code) -> String {
    body(code, Map::new())
}

/// The member `key` of an object root, `None` when it is missing or null (jsoncpp's
/// `isNull()`).
fn field<'a>(root: &'a Value, key: &str) -> Option<&'a Value> {
    root.get(key).filter(|v| !v.is_null())
}

/// jsoncpp's `asUInt`: null 0, a boolean 0 or 1, a number in `0..2^32` (a fraction cut off);
/// a string, an array, an object, a negative number or one of 2^32 and above: `None`.
pub fn as_uint(v: &Value) -> Option<u32> {
    match v {
        Value::Null => Some(0),
        Value::Bool(b) => Some(u32::from(*b)),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u32::try_from(u).ok()
            } else if n.is_i64() {
                None
            } else {
                let f = n.as_f64()?;
                (0.0..=f64::from(u32::MAX)).contains(&f).then_some(f as u32)
            }
        }
        Value::String(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

/// jsoncpp's `asString`: null `""`, a string itself, a boolean or a number as its text; an
/// array or an object: `None`.
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A member list: an array of [`as_uint`] values; an empty object or a scalar is an empty list
/// (jsoncpp's `size()` is 0 there); an object with members, or an element that does not
/// convert: `None`.
fn uint_list(v: &Value) -> Option<Vec<u32>> {
    match v {
        Value::Array(items) => items.iter().map(as_uint).collect(),
        Value::Object(o) if !o.is_empty() => None,
        _ => Some(Vec::new()),
    }
}

/// The fields every request converts first (the original's "authentication" step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub app_key: String,
    pub req_user_id: u32,
}

/// The authentication step: `app_key` as a string and `req_user_id` as a number (missing ones
/// are `""` and 0). `None` (error 5) when the root is neither an object nor null, or a field
/// does not convert.
pub fn auth(root: &Value) -> Option<Auth> {
    if !matches!(root, Value::Object(_) | Value::Null) {
        return None;
    }
    let app_key = root.get("app_key").map_or(Some(String::new()), as_string)?;
    let req_user_id = root.get("req_user_id").map_or(Some(0), as_uint)?;
    Some(Auth {
        app_key,
        req_user_id,
    })
}

/// Why a request's fields were refused (error 1): the first failed check, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError(pub String);

fn required<'a>(root: &'a Value, key: &str) -> Result<&'a Value, ParamError> {
    field(root, key).ok_or_else(|| ParamError(format!("no {key}")))
}

fn convert<T>(root: &Value, key: &str, f: impl Fn(&Value) -> Option<T>) -> Result<T, ParamError> {
    let v = root.get(key).unwrap_or(&Value::Null);
    f(v).ok_or_else(|| ParamError(format!("{key} of the wrong type: {v}")))
}

/// The member list of `user_id_list`, at most `max` ids.
fn members(root: &Value, max: usize) -> Result<Vec<u32>, ParamError> {
    let list = root.get("user_id_list").unwrap_or(&Value::Null);
    let count = match list {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    };
    if count > max {
        return Err(ParamError(format!(
            "user_id_list of {count} ids, at most {max}"
        )));
    }
    uint_list(list)
        .ok_or_else(|| ParamError("user_id_list with an element of the wrong type".into()))
}

/// A number that must be a value of the protocol enum `T`.
fn enum_value<T: TryFrom<i32>>(key: &str, value: u32) -> Result<T, ParamError> {
    i32::try_from(value)
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| ParamError(format!("{key} {value} is not a valid value")))
}

/// `POST /query/CreateGroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateGroup {
    pub req_user_id: u32,
    pub group_name: String,
    pub group_type: GroupType,
    pub group_avatar: String,
    pub members: Vec<u32>,
}

impl CreateGroup {
    /// The original's checks in its order (spec §13.4, steps 2 to 7), and at most
    /// `max_members` ids.
    pub fn parse(root: &Value, max_members: usize) -> Result<CreateGroup, ParamError> {
        for key in [
            "req_user_id",
            "group_name",
            "group_type",
            "group_avatar",
            "user_id_list",
        ] {
            required(root, key)?;
        }
        let req_user_id = convert(root, "req_user_id", as_uint)?;
        let group_name = convert(root, "group_name", as_string)?;
        let group_type = convert(root, "group_type", as_uint)?;
        let group_avatar = convert(root, "group_avatar", as_string)?;
        Ok(CreateGroup {
            req_user_id,
            group_name,
            group_type: enum_value("group_type", group_type)?,
            group_avatar,
            members: members(root, max_members)?,
        })
    }
}

/// `POST /query/ChangeMembers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeMembers {
    pub req_user_id: u32,
    pub group_id: u32,
    pub modify_type: GroupModifyType,
    pub members: Vec<u32>,
}

impl ChangeMembers {
    /// The original's checks in its order (spec §13.5), and at most `max_members` ids.
    pub fn parse(root: &Value, max_members: usize) -> Result<ChangeMembers, ParamError> {
        for key in ["req_user_id", "group_id", "modify_type", "user_id_list"] {
            required(root, key)?;
        }
        let req_user_id = convert(root, "req_user_id", as_uint)?;
        let group_id = convert(root, "group_id", as_uint)?;
        let modify_type = convert(root, "modify_type", as_uint)?;
        Ok(ChangeMembers {
            req_user_id,
            group_id,
            modify_type: enum_value("modify_type", modify_type)?,
            members: members(root, max_members)?,
        })
    }
}

/// The value of `key` in a query string (`a=1&b=2`), percent-decoded (`+` is a space).
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| percent_decode(k).as_deref() == Some(key))
        .and_then(|(_, v)| percent_decode(v))
}

/// `%XX` escapes and `+`; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A decimal id of a query string: digits only, below 2^32.
pub fn query_id(query: Option<&str>, key: &str) -> Option<u32> {
    let v = query_param(query?, key)?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// The success body of `GET /query/GroupInfo`.
pub fn group_body(g: &GroupInfo) -> String {
    let extra = members_of([
        ("group_id", json!(g.group_id)),
        ("group_name", text(&g.group_name)),
        ("group_avatar", text(&g.group_avatar)),
        ("group_type", json!(g.group_type)),
        ("creator_id", json!(g.group_creator_id)),
        ("version", json!(g.version)),
        ("user_id_list", json!(g.group_member_list)),
    ]);
    body(Code::Success, extra)
}

/// The success body of `GET /query/UserInfo`.
pub fn user_body(u: &UserInfo) -> String {
    let extra = members_of([
        ("user_id", json!(u.user_id)),
        // `IMUser.name` (the login name) travels as `user_real_name`, `domain` as
        // `user_domain`.
        ("user_name", text(&u.user_real_name)),
        ("domain", text(&u.user_domain)),
        ("nick_name", text(&u.user_nick_name)),
        ("avatar_url", text(&u.avatar_url)),
        ("department_id", json!(u.department_id)),
        ("email", text(&u.email)),
        ("tel", text(&u.user_tel)),
        ("gender", json!(u.user_gender)),
        ("status", json!(u.status)),
        (
            "sign_info",
            text(u.sign_info.as_deref().unwrap_or_default()),
        ),
    ]);
    body(Code::Success, extra)
}

fn members_of<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn bodies_have_the_original_bytes() {
        let mut extra = Map::new();
        extra.insert("group_id".into(), json!(123));
        let ok = body(Code::Success, extra);
        assert_eq!(
            ok,
            "{\n   \"error_code\" : 0,\n   \"error_msg\" : \"成功\",\n   \"group_id\" : 123\n}\n"
        );
        assert_eq!(ok.len(), 72);
        assert_eq!(
            code_body(Code::Unauthorized),
            "{\n   \"error_code\" : 5,\n   \"error_msg\" : \"未授权的接口\"\n}\n"
        );
        assert_eq!(
            code_body(Code::ChangeFailed),
            "{\n   \"error_code\" : 12,\n   \"error_msg\" : \"更改群成员失败\"\n}\n"
        );
    }

    #[test]
    fn conversions_follow_jsoncpp() {
        assert_eq!(as_uint(&v("7")), Some(7));
        assert_eq!(as_uint(&v("true")), Some(1));
        assert_eq!(as_uint(&v("null")), Some(0));
        assert_eq!(as_uint(&v("2.9")), Some(2));
        assert_eq!(as_uint(&v("4294967295")), Some(u32::MAX));
        for bad in ["-1", "4294967296", "-0.5", "\"7\"", "[7]", "{}", "1e10"] {
            assert_eq!(as_uint(&v(bad)), None, "{bad}");
        }
        assert_eq!(as_string(&v("\"x\"")).as_deref(), Some("x"));
        assert_eq!(as_string(&v("12")).as_deref(), Some("12"));
        assert_eq!(as_string(&v("false")).as_deref(), Some("false"));
        assert_eq!(as_string(&v("[]")), None);
        assert_eq!(uint_list(&v("[1, 2]")), Some(vec![1, 2]));
        assert_eq!(uint_list(&v("5")), Some(vec![]));
        assert_eq!(uint_list(&v("{}")), Some(vec![]));
        assert_eq!(uint_list(&v("{\"a\": 1}")), None);
        assert_eq!(uint_list(&v("[1, \"2\"]")), None);
    }

    #[test]
    fn auth_step() {
        let a = auth(&v("{\"app_key\": \"k\", \"req_user_id\": 3}")).unwrap();
        assert_eq!((a.app_key.as_str(), a.req_user_id), ("k", 3));
        assert_eq!(
            auth(&v("null")),
            Some(Auth {
                app_key: String::new(),
                req_user_id: 0
            })
        );
        for bad in [
            "[]",
            "\"s\"",
            "1",
            "true",
            "{\"app_key\": []}",
            "{\"req_user_id\": \"1\"}",
            "{\"req_user_id\": -1}",
        ] {
            assert_eq!(auth(&v(bad)), None, "{bad}");
        }
    }

    #[test]
    fn create_group_checks() {
        let good = v(
            "{\"req_user_id\": 1, \"group_name\": \"g\", \"group_type\": 1, \
                      \"group_avatar\": \"\", \"user_id_list\": [3, 4]}",
        );
        let c = CreateGroup::parse(&good, 1000).unwrap();
        assert_eq!(c.group_type, GroupType::Normal);
        assert_eq!(c.members, vec![3, 4]);
        let with = |key: &str, value: Value| {
            let mut root = good.clone();
            root[key] = value;
            CreateGroup::parse(&root, 1000)
        };
        for key in [
            "req_user_id",
            "group_name",
            "group_type",
            "group_avatar",
            "user_id_list",
        ] {
            assert!(with(key, Value::Null).is_err(), "{key} null");
        }
        assert!(with("group_type", json!(3)).is_err());
        assert!(with("group_type", json!(0)).is_err());
        assert!(with("group_type", json!("1")).is_err());
        assert!(with("group_name", json!({})).is_err());
        assert!(with("user_id_list", json!([1, -2])).is_err());
        assert_eq!(
            with("user_id_list", json!(9)).unwrap().members,
            Vec::<u32>::new()
        );
        let big: Vec<u32> = (1..=1001).collect();
        assert!(with("user_id_list", json!(big)).is_err());
        assert_eq!(with("group_name", json!(5)).unwrap().group_name, "5");
    }

    #[test]
    fn change_members_checks() {
        let good = v("{\"req_user_id\": 0, \"group_id\": 9, \"modify_type\": 2, \
                      \"user_id_list\": [3]}");
        let c = ChangeMembers::parse(&good, 1000).unwrap();
        assert_eq!((c.group_id, c.modify_type), (9, GroupModifyType::Del));
        let mut bad = good.clone();
        bad["modify_type"] = json!(3);
        assert!(ChangeMembers::parse(&bad, 1000).is_err());
        let mut bad = good.clone();
        bad.as_object_mut().unwrap().remove("group_id");
        assert_eq!(
            ChangeMembers::parse(&bad, 1000).unwrap_err().0,
            "no group_id"
        );
    }

    #[test]
    fn query_strings() {
        assert_eq!(query_id(Some("group_id=12&x=1"), "group_id"), Some(12));
        assert_eq!(query_id(Some("x=1&group_id=%31%32"), "group_id"), Some(12));
        assert_eq!(query_id(Some("group_id=-1"), "group_id"), None);
        assert_eq!(query_id(Some("group_id=4294967296"), "group_id"), None);
        assert_eq!(query_id(Some("group_id="), "group_id"), None);
        assert_eq!(query_id(None, "group_id"), None);
        assert_eq!(
            query_param("app_key=a+b%2Fc", "app_key").as_deref(),
            Some("a b/c")
        );
        assert_eq!(query_param("app_key=%zz", "app_key"), None);
        assert_eq!(query_param("app_key", "app_key").as_deref(), Some(""));
    }
}
