//! TODO
use super::Ctx;
use crate::error::ApiResult;
use crate::state::RegionState;
use crate::validate::Req;
use serde_json::Value;
pub fn send(_ctx: &Ctx<'_>, _st: &mut RegionState, _req: Req) -> ApiResult<Value> {
    Err(super::unknown_operation("send"))
}
pub fn list(_ctx: &Ctx<'_>, _st: &mut RegionState, _req: Req) -> ApiResult<Value> {
    Err(super::unknown_operation("list"))
}
pub fn list_invocations(_ctx: &Ctx<'_>, _st: &mut RegionState, _req: Req) -> ApiResult<Value> {
    Err(super::unknown_operation("list_invocations"))
}
