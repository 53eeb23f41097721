//! placeholder
use crate::ControllerContext;
use futures::future::BoxFuture;
pub fn start(_ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> { Box::pin(async { Ok(()) }) }
