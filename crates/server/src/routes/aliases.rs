//! Collection aliases: applications swap the collection behind a name with one atomic call.

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::json::{Body, Reply, Started};
use axum::extract::{Path, State};
use quiver_engine::AliasAction;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAliases {
    actions: Vec<Value>,
    timeout: Option<u64>,
}

fn field(o: &serde_json::Map<String, Value>, key: &str, at: &str) -> ApiResult<String> {
    o.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Format error in JSON body: {at}.{key}: expected a name (a string)"
            ))
        })
}

fn action(v: &Value, at: &str) -> ApiResult<AliasAction> {
    let Some((op, body)) = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected one of create_alias, delete_alias, rename_alias"
        )));
    };
    let at = format!("{at}.{op}");
    let Some(o) = body.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected an object"
        )));
    };
    Ok(match op.as_str() {
        "create_alias" => AliasAction::Create {
            alias: field(o, "alias_name", &at)?,
            collection: field(o, "collection_name", &at)?,
        },
        "delete_alias" => AliasAction::Delete {
            alias: field(o, "alias_name", &at)?,
        },
        "rename_alias" => AliasAction::Rename {
            old: field(o, "old_alias_name", &at)?,
            new: field(o, "new_alias_name", &at)?,
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}: unknown alias action `{other}`, expected create_alias, delete_alias or rename_alias"
            )));
        }
    })
}

/// `POST /collections/aliases`: all actions apply, in order, or none.
#[utoipa::path(
    post,
    path = "/collections/aliases",
    tag = "aliases",
    summary = "Create, delete and rename aliases, atomically",
    request_body = ChangeAliases,
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"))
)]
pub async fn update(
    State(app): State<AppState>,
    started: Started,
    Body(req): Body<ChangeAliases>,
) -> ApiResult<Reply> {
    let _ = req.timeout;
    let actions = req
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| action(a, &format!("actions[{i}]")))
        .collect::<ApiResult<Vec<_>>>()?;
    let db = app.db.clone();
    app.blocking(move || Ok(db.update_aliases(&actions)?))
        .await?;
    Ok(Reply::ok(&started, true))
}

fn describe(aliases: Vec<(String, String)>) -> Value {
    let list: Vec<Value> = aliases
        .into_iter()
        .map(|(alias, collection)| json!({"alias_name": alias, "collection_name": collection}))
        .collect();
    json!({"aliases": list})
}

#[utoipa::path(
    get,
    path = "/aliases",
    tag = "aliases",
    summary = "List aliases",
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"))
)]
pub async fn list(State(app): State<AppState>, started: Started) -> ApiResult<Reply> {
    Ok(Reply::ok(&started, describe(app.db.list_aliases())))
}

#[utoipa::path(
    get,
    path = "/collections/{name}/aliases",
    tag = "aliases",
    summary = "List a collection's aliases",
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn of_collection(
    State(app): State<AppState>,
    Path(name): Path<String>,
    started: Started,
) -> ApiResult<Reply> {
    if !app.db.list_collections().contains(&name) {
        return Err(ApiError::not_found(format!(
            "Not found: Collection `{name}` doesn't exist!"
        )));
    }
    let aliases = app
        .db
        .list_aliases()
        .into_iter()
        .filter(|(_, c)| *c == name)
        .collect();
    Ok(Reply::ok(&started, describe(aliases)))
}
