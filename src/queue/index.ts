/**
 * Scale-out: a pg-boss work queue on the catalog's PostgreSQL server. Ingest and embed are split into idempotent
 * units (a raster; a block of a raster's tiles) that any number of `tilevec worker` processes take and retry.
 */
export { JobQueue, QUEUES, jobsReport, requireQueueServer, type DeadLetter, type FetchedJob, type QueueCounts, type QueueSettings } from './queue.ts';
export { planEmbed, planIngest, DEFAULT_BLOCK_TILES, type EmbedUnit, type IngestUnit, type IngestUnitOptions, type Unit } from './units.ts';
export { runWorker, type WorkerOptions, type WorkerSummary } from './worker.ts';
