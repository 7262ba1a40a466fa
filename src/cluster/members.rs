//! `sla-ledger cluster scheduler|executor`: this binary as a Ballista cluster member.
//!
//! Takes the command line of one member; runs Ballista's scheduler or executor library until
//! the process is stopped. Executors must see the call files at the paths the client gives
//! (shared storage), and need no other input: the small tables travel inside the queries.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use anyhow::Context;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::execution::SessionStateBuilder;

use crate::stages::calls::ballista::object_stores::S3Registry;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::FunctionRegistry;

use crate::cli::{ClusterCommand, ExecutorArgs, SchedulerArgs};
use crate::error::UsageError;
use crate::stages::calls::ballista_functions;

pub(super) fn cluster_command(command: &ClusterCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Ballista plans deep expression trees recursively.
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .context("cannot start the async runtime")?;
    match command {
        ClusterCommand::Scheduler(args) => runtime.block_on(scheduler(args)),
        ClusterCommand::Executor(args) => runtime.block_on(executor(args)),
    }
}

/// `HOST:PORT`, also written `df://HOST:PORT`.
fn host_port(flag: &str, text: &str) -> anyhow::Result<(String, u16)> {
    let bare = text.strip_prefix("df://").unwrap_or(text);
    let (host, port) = bare
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| UsageError::new(format!("{flag}: `{text}` is not HOST:PORT")))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| UsageError::new(format!("{flag}: `{port}` is not a port number")))?;
    Ok((host.to_string(), port))
}

fn socket(flag: &str, host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| UsageError::new(format!("{flag}: cannot resolve `{host}`")).into())
}

async fn scheduler(args: &SchedulerArgs) -> anyhow::Result<()> {
    let (host, port) = host_port("--bind", &args.bind)?;
    let address = socket("--bind", &host, port)?;
    let config = SchedulerConfig {
        bind_host: host.clone(),
        bind_port: port,
        external_host: args.external_host.clone().unwrap_or(host),
        executor_timeout_seconds: args.executor_timeout_secs,
        expire_dead_executor_interval_seconds: (args.executor_timeout_secs / 4).max(1),
        no_executors_grace_period_seconds: args.executor_timeout_secs,
        // Planning lists and reads the footers of `s3://` call files, with this process's
        // keys; the heavy step's queries call functions of their own (plans name them).
        override_session_builder: Some(Arc::new(|config| {
            let mut state = default_session_builder(config)?;
            for function in ballista_functions() {
                state.register_udf(function)?;
            }
            let runtime = S3Registry::from_environment()?.runtime(None)?;
            Ok(SessionStateBuilder::new_from_existing(state)
                .with_runtime_env(runtime)
                .build())
        })),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .context("cannot set up the scheduler's cluster state")?;
    eprintln!("sla-ledger scheduler listening on {address}");
    start_server(cluster, address, Arc::new(config))
        .await
        .with_context(|| format!("the scheduler on {address} stopped"))
}

async fn executor(args: &ExecutorArgs) -> anyhow::Result<()> {
    let (scheduler_host, scheduler_port) = host_port("--scheduler", &args.scheduler)?;
    let (host, port) = host_port("--bind", &args.bind)?;
    socket("--bind", &host, port)?;
    let grpc_port = match args.grpc_port {
        Some(p) => p,
        None => port
            .checked_add(1)
            .ok_or_else(|| UsageError::new("--bind: the port is the last one; give --grpc-port"))?,
    };
    let mut config = ExecutorProcessConfig {
        bind_host: host.clone(),
        external_host: Some(args.external_host.clone().unwrap_or(host)),
        port,
        grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: args.concurrent_tasks.unwrap_or(0),
        executor_heartbeat_interval_seconds: args.heartbeat_secs,
        print_thread_info: false,
        memory_pool_size: args.memory_limit_mib.map(|mib| mib * 1024 * 1024),
        override_function_registry: Some(Arc::new(function_registry())),
        ..ExecutorProcessConfig::default()
    };
    if let Some(dir) = &args.work_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the work folder `{}`", dir.display()))?;
        config.work_dir = Some(dir.display().to_string());
    }
    // Tasks read `s3://` call files with this process's keys; spills go where Ballista's own
    // runtime would put them (the work folder, else the system's temporary folder).
    let temp = config.work_dir.clone();
    config.override_runtime_producer = Some(Arc::new(move |_| {
        S3Registry::from_environment()?.runtime(temp.as_deref())
    }));
    eprintln!(
        "sla-ledger executor on {}:{port} (data {grpc_port}) joining the scheduler at {}:{}",
        config.bind_host, config.scheduler_host, config.scheduler_port
    );
    start_executor_process(Arc::new(config))
        .await
        .context("the executor stopped")
}

/// Ballista's functions and the heavy step's own, which the tasks' plans name.
fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for function in ballista_functions() {
        registry
            .scalar_functions
            .insert(function.name().to_string(), function);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_an_optional_df_scheme() {
        assert_eq!(
            host_port("--scheduler", "df://10.0.0.5:50050").unwrap(),
            ("10.0.0.5".to_string(), 50050)
        );
        assert_eq!(
            host_port("--bind", "0.0.0.0:7000").unwrap(),
            ("0.0.0.0".to_string(), 7000)
        );
        assert!(host_port("--bind", "7000").is_err());
        assert!(host_port("--bind", "host:http").is_err());
    }
}
