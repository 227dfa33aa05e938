import { chatwootRows, stripeRows, storeRows, heapPerEntry, heapAfterFlood } from './micro.js';
console.table(await chatwootRows(300));
console.table(await stripeRows(300));
console.table(await storeRows(300));
console.log('bytes/entry', heapPerEntry(100_000));
console.log(heapAfterFlood(2_000_000));
