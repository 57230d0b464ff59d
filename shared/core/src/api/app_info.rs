//! `GET /info`, `/parameters`, `/meta`, `/site`: read from the app's configuration.

use super::views::{AppInfo, AppMeta, AppParameters, AppSite};
use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;

pub(crate) fn info(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::ok(&AppInfo::new(&ctx.app)))
}

pub(crate) fn parameters(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::ok(&AppParameters::new(&ctx.app)))
}

pub(crate) fn meta(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::ok(&AppMeta::new(&ctx.app)))
}

pub(crate) fn site(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::ok(&AppSite::new(&ctx.app)))
}
