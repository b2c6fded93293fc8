export declare const ROOT: string;
export declare const COMPILED_MAIN: string;
export declare const SOURCE_MAIN: string;
export declare function compiledState(): 'fresh' | 'missing' | 'stale';
