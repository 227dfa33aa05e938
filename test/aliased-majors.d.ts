// The older majors are installed under aliases (express4, koa2) to test both; they share the types of
// the current major for the small surface the tests touch.
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
