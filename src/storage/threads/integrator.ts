import { serveIntegrator } from '../../log/integrator-worker.js';
import type { ThreadMain } from '../backend.js';

export const main: ThreadMain<'integrator'> = (port, _data, backend) => serveIntegrator(port, backend.tileStore());
