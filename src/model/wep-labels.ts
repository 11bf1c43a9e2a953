/**
 * Who owns the labels of a WorkloadEndpoint the CNI plugin wrote (the contract shared by the
 * plugin and tortiectl). The runtime does: every ADD of the container — first start, restart
 * (which is DEL then ADD), `podman network reload` — writes the endpoint afresh, so a label set
 * on it by hand could not last. The plugin therefore marks its endpoints with the annotation
 * `tortie.io/owner: cni`, and `tortiectl label` refuses to edit them, naming the durable
 * sources instead:
 *   - the network configuration's `labels` and `args.cni.labels` (every workload of the network),
 *   - `tortie.io/container-name`: the runtime's name for the container (podman's --name),
 *   - the labelsToApply of the network's Profile (named after the network by default), which
 *     `tortiectl` edits and every endpoint of the network inherits.
 */
import type { WorkloadEndpoint } from './types';

export const OWNER_ANNOTATION = 'tortie.io/owner';
export const CNI_OWNER = 'cni';
export const CONTAINER_NAME_LABEL = 'tortie.io/container-name';

export function cniOwned(wep: Pick<WorkloadEndpoint, 'metadata'>): boolean {
  return wep.metadata.annotations?.[OWNER_ANNOTATION] === CNI_OWNER;
}

export const CNI_OWNED_LABELS_HELP = 'its labels are written by the CNI plugin on every ADD of the container; '
  + 'set them in the network configuration (labels, args.cni.labels) or in the labelsToApply of its Profile';
